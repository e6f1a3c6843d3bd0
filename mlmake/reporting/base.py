"""The base of `mlmake report --base REV`: its metrics from the lock committed at REV, and its
curves from the model's curves.json as that build stored it in DVC: the model's pointer at
REV (.mlmake-artifacts/ADDRESS.dvc, read with `git show`) names its folder's `.dir` listing,
which names curves.json's object, looked up in the project's DVC cache and the local remote.
Nothing is checked out, fetched or recomputed; what cannot be found is said in the report."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlmake.outputs import history
from mlmake.state.lock import Lock
from mlmake.state.remotecache import object_path
from mlmake.state.runcache import POINTERS

_DIR = re.compile(r"md5: ([0-9a-f]{32})\.dir\b")
_MD5 = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Base:
    """A git revision's build: its lock, and where to look for its objects."""

    root: Path
    rev: str
    lock: Lock
    stores: tuple[Path, ...]  # DVC object folders: the project's cache, a remote in a local folder

    def metrics(self, address: str) -> dict[str, Any]:
        entry = self.lock.get(address)
        return dict(entry.metrics) if entry else {}

    def curves(self, address: str) -> tuple[dict[str, Any], str]:
        """The base's curves.json, or {} and why there is no overlay."""
        if self.lock.get(address) is None:
            return {}, f"not built at {self.rev}: nothing to overlay"
        pointer = _show(self.root, self.rev, f"{POINTERS}/{address}.dvc")
        found = _DIR.search(pointer or "")
        listing = self._object(found.group(1) + ".dir") if found else None
        md5 = _member(listing, "curves.json") if listing is not None else None
        data = self._object(md5) if md5 else None
        try:
            curves = json.loads(data) if data is not None else None
        except ValueError:
            curves = None
        if not isinstance(curves, dict):
            return {}, (f"no curves of {self.rev} to overlay: its build's curves.json is not in the DVC cache or "
                        "the local remote (`mlmake pull` on that revision brings it; a build before curves.json "
                        "existed has none)")
        return curves, ""

    def _object(self, md5: str) -> bytes | None:
        for store in self.stores:
            try:
                return object_path(store, md5).read_bytes()
            except OSError:
                continue
        return None


def open_base(root: Path, rev: str, stores: tuple[Path, ...]) -> Base:
    """The base at REV: an unknown revision is an error; one without a lock has built nothing."""
    return Base(root, rev, history.lock_at(root, rev), stores)


def _member(listing: bytes, name: str) -> str | None:
    try:
        entries = json.loads(listing)
        md5 = next((str(e["md5"]) for e in entries if e.get("relpath") == name), None)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return md5 if md5 and _MD5.fullmatch(md5) else None


def _show(root: Path, rev: str, rel: str) -> str | None:
    """A file of the project as committed at rev (None when absent)."""
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True,
                             timeout=30)
        prefix = root.resolve().relative_to(Path(top.stdout.strip()).resolve()).as_posix()
        path = rel if prefix == "." else f"{prefix}/{rel}"
        shown = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, text=True,
                               timeout=30)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return shown.stdout if shown.returncode == 0 else None
