"""Where the DVC remote is, and what planning can know about it without DVC or the network.

With no `remote:` in mlproject.yaml, every clone on this machine shares one default remote in
the user's cache folder ($MLMAKE_REMOTE, else $XDG_CACHE_HOME/mlmake/remote, else
~/.cache/mlmake/remote): DVC's objects are named by their md5 and run-cache entries by their
fingerprint, so projects can share it safely, and deleting a project's `.mlmake/` never
deletes the only copy of anything. Stdlib only: `plan` imports it."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlmake.state.runcache import Hit, entry_path, get, pointer_path, read_entry

ENV = "MLMAKE_REMOTE"
_MD5 = re.compile(r"^-?\s*md5: ([0-9a-f]{32}(?:\.dir)?)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Location:
    """The remote a project uses: its URL, DVC options, and whether it is the machine's default."""

    url: str
    options: dict[str, object]
    default: bool

    @property
    def is_local(self) -> bool:
        """A folder on this machine: its objects can be stat-ed."""
        return "://" not in self.url or self.url.startswith("file://")

    @property
    def automatic(self) -> bool:
        """The default remote in a folder on this machine: builds share to it and restore from it
        without being asked (a configured or cloud remote waits for push, pull and --pull)."""
        return self.default and self.is_local


def default_url() -> str:
    """The machine-wide default remote: $MLMAKE_REMOTE, else the XDG cache folder."""
    chosen = os.environ.get(ENV, "").strip()
    if chosen:
        return chosen if "://" in chosen else os.path.abspath(os.path.expanduser(chosen))
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec: a relative value is ignored
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mlmake", "remote")


def locate(root: Path, url: str | None, options: dict[str, object] | None = None) -> Location:
    """The project's remote: the configured URL, or the machine's default."""
    if url is None:
        return Location(default_url(), {}, True)
    return Location(url, dict(options or {}), False)


def local_folder(root: Path, location: Location) -> Path:
    """A local remote's folder (a relative URL is relative to the project)."""
    path = location.url.removeprefix("file://")
    return Path(path) if os.path.isabs(path) else root / path


def object_path(odb: Path, md5: str) -> Path:
    return odb / "files" / "md5" / md5[:2] / md5[2:]


def pointer_md5s(root: Path, address: str) -> list[str]:
    """The md5s a node's pointer names (ours: one `md5:` line per output), or [] without one."""
    try:
        return _MD5.findall(pointer_path(root, address).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return []


class RemoteCache:
    """What `plan` may promise: a node is restorable when every object its pointer names is in
    the project's DVC cache or on a local remote (checked by stat, nothing is read but `.dir`
    listings). For a remote in the cloud the pointer is taken at its word (`checked` is False):
    planning never goes on the network. Every path read or stat-ed is handed to `note` first,
    so a remembered plan is answered again only while none of them changed."""

    def __init__(self, root: Path, location: Location, note: Callable[[Path], None] | None = None) -> None:
        self.root, self.location = root, location
        self.note = note or (lambda _path: None)
        self.checked = location.is_local
        self.stores = [root / ".dvc" / "cache"] + ([local_folder(root, location)] if self.checked else [])

    def hit(self, fingerprint: str) -> Hit | None:
        """The local run-cache entry, else the one shared on the machine's default remote (as
        `build` looks it up; another remote's entries come with `build --pull`)."""
        self.note(entry_path(self.root, fingerprint))
        found = get(self.root, fingerprint)
        if found is not None or not self.location.automatic:
            return found
        folder = local_folder(self.root, self.location)
        self.note(shared_entry_path(folder, fingerprint))
        return shared_hit(folder, fingerprint)

    def restorable(self, address: str) -> bool:
        self.note(pointer_path(self.root, address))
        md5s = pointer_md5s(self.root, address)
        if not md5s:
            return False
        return not self.checked or all(self._has(md5) for md5 in md5s)

    def _has(self, md5: str) -> bool:
        for odb in self.stores:
            path = object_path(odb, md5)
            self.note(path)
            if not path.is_file():
                continue
            if not md5.endswith(".dir"):
                return True
            files = _listing(path)
            if files is not None and all(self._has_file(m) for m in files):
                return True
        return False

    def _has_file(self, md5: str) -> bool:
        for odb in self.stores:
            path = object_path(odb, md5)
            self.note(path)
            if path.is_file():
                return True
        return False


def shared_entry_path(folder: Path, fingerprint: str) -> Path:
    return folder / "mlmake" / "runcache" / f"{fingerprint}.json"


def shared_hit(folder: Path, fingerprint: str) -> Hit | None:
    """A run-cache entry pushed to a local remote (mlmake/runcache/FINGERPRINT.json), or None."""
    return read_entry(shared_entry_path(folder, fingerprint), fingerprint)


def _listing(path: Path) -> list[str] | None:
    """The file md5s a `.dir` object lists; None when it is not a readable listing."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return [str(e["md5"]) for e in entries]
    except (OSError, ValueError, KeyError, TypeError):
        return None
