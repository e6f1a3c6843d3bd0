"""The project's folders as a build writes them: each node writes into a staging folder of
its own (.mlmake/tmp/NODE/) that is moved into place only when it succeeded; what a failed
node left is kept for inspection (.mlmake/failed/NODE/); its log is .mlmake/logs/NODE.log."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mlmake.core.paths import writable_output
from mlmake.core.workdir import clean_staging, failed_root, log_path, move_into_place, staging_root

TAIL = 20  # log lines shown under a failed node


class LocalWorkspace:
    """The build's file system: this project's folders on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def clean(self) -> None:
        """Remove what a killed build left half-written (only the build lock's holder calls this)."""
        clean_staging(self.root)

    def stage(self, address: str, outputs: tuple[str, ...], *, in_place: bool) -> dict[str, str]:
        """Where a node writes each declared output: its own path when its kind writes in place,
        else a staging path. A kind's first output (its folder) is created empty; the others
        (a batch target's parquet file) are written by the recipe at the staged path."""
        if in_place:
            return {out: str(self.root / out) for out in outputs}
        staging: dict[str, str] = {}
        for i, out in enumerate(outputs):
            tmp = self._staging(address) / f"{i}-{Path(out).name}"
            tmp.parent.mkdir(parents=True, exist_ok=True)
            if i == 0:
                tmp.mkdir()
            staging[out] = str(tmp)
        return staging

    def start_log(self, address: str, header: str) -> str:
        """A fresh log for a node's run, starting with header; its path."""
        log = log_path(self.root, address)
        log.write_text(header + "\n", encoding="utf-8")
        return str(log)

    def place(self, staged: str, output: str) -> str:
        """Move a staged output to its declared path: '' or why it was not (what is there stays)."""
        if not os.path.lexists(staged):
            return f"declared output '{output}' was not written"
        if problem := writable_output(self.root, output):  # a symlink made since validate
            return problem
        move_into_place(Path(staged), self.root / output)
        return ""

    def discard(self, address: str) -> None:
        """Remove a node's staging folder."""
        shutil.rmtree(self._staging(address), ignore_errors=True)

    def keep_failed(self, address: str) -> str:
        """Keep what a failed node wrote for inspection: the folder, relative to the project, or ''."""
        src = self._staging(address)
        if not src.exists() or not any(p.is_file() for p in src.rglob("*")):
            shutil.rmtree(src, ignore_errors=True)
            return ""
        dest = failed_root(self.root) / _slug(address)
        move_into_place(src, dest)
        return str(dest.relative_to(self.root))

    def log_tail(self, log: str) -> list[str]:
        """The last lines of a node's log ([] when it cannot be read)."""
        try:
            return Path(log).read_text(encoding="utf-8", errors="replace").splitlines()[-TAIL:]
        except OSError:
            return []

    def _staging(self, address: str) -> Path:
        return staging_root(self.root) / _slug(address)


def _slug(address: str) -> str:
    return address.replace("/", "_")
