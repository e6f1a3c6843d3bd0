"""Content hashes of files, folders and configuration, with a stat-keyed cache so
an unchanged file is never read twice.

The workspace is the truth for data: a DVC-tracked path present in the workspace is
hashed as DVC hashes it (md5, a folder's `.dir` manifest), so where its bytes agree with
its .dvc pointer the digest is the pointer's, on a laptop and on a CI clone alike. Where
the data is absent (a CI clone), the pointer's hash stands, so `plan` needs no data.
Where the bytes differ from the pointer, the digest is that of the bytes (what a recipe
reads) and the path is noted, so commands can say to run `mlmake data add`."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from mlmake.core.memo import Seen, key_of
from mlmake.core.workdir import HASHES, VERSIONS, read_json_store, write_cache

CACHE_FILE = HASHES
CACHE_VERSION = VERSIONS[HASHES]
_CHUNK = 1 << 20
_RACY_NS = 2_000_000_000  # coarse file-system clocks tick in up to 2 s (FAT); most in ns


@dataclass(frozen=True, slots=True)
class Digest:
    """The hash and size of a file or folder; hash is '' when the path is absent."""

    hash: str
    size: int

    @property
    def exists(self) -> bool:
        return bool(self.hash)


ABSENT = Digest("", 0)


@dataclass(frozen=True, slots=True)
class CodeDigest:
    """A code file's hash, and for a python file hashed by its meaning ('py:…') its bytes'
    hash beside it (what tells a reformat from no change); bytes is '' otherwise."""

    hash: str
    bytes: str = ""


def hash_bytes(data: bytes) -> str:
    from blake3 import blake3

    return str(blake3(data).hexdigest(length=16))


def hash_json(value: Any) -> str:
    """A hash of a JSON-able value that ignores key order."""
    return hash_bytes(canonical(value).encode())


UNSET = "unset"  # a declared environment variable that is not set


def env_hash(name: str, value: str | None) -> str:
    """What the lock records of a declared environment variable: a hash of its value (never
    the value: it may be a secret), or "unset"."""
    if value is None:
        return UNSET
    return hash_bytes(f"{name}={value}".encode("utf-8", "surrogateescape"))


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _hash_file(path: str) -> str:
    from blake3 import blake3

    h = blake3()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return str(h.hexdigest(length=16))


def md5_file(path: str | os.PathLike[str]) -> str:
    """The md5 of a file's bytes, as DVC 3 records it (`hash: md5`)."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _meaning_file(path: str) -> str:
    """'py:' and the hash of a python file's normal form; '' when it has none."""
    from mlmake.state.pycode import normal_form

    with open(path, "rb") as f:
        form = normal_form(f.read())
    return "" if form is None else "py:" + hash_bytes(form)


class Hasher:
    """Hashes paths under a project root, remembering (size, mtime_ns, inode, device, ctime_ns) → hash."""

    def __init__(self, root: Path, *, persist: bool = True) -> None:
        self.root = root
        self.persist = persist
        self.entries: dict[str, list[Any]] = self._load() if persist else {}
        self.dirty = False
        self.seen = Seen()  # every path looked at, with its stat key: what a kept plan depends on
        self.unrecorded: dict[str, str] = {}  # DVC-tracked path whose bytes differ from its pointer → the pointer

    def _load(self) -> dict[str, list[Any]]:
        body = read_json_store(self.root / CACHE_FILE, CACHE_FILE, _warn)
        entries = body.get("entries") if body is not None else None
        if body is not None and not isinstance(entries, dict):
            _warn(f"{CACHE_FILE} was unreadable (no entries); rebuilding it")
        return entries if isinstance(entries, dict) else {}

    def save(self) -> None:
        """Write the cache back if anything new was hashed (atomically; a cache that cannot
        be written, on a full disk or a read-only folder, only costs speed)."""
        if not (self.persist and self.dirty):
            return
        body = json.dumps({"version": CACHE_VERSION, "entries": self.entries})
        if write_cache(self.root / CACHE_FILE, body):
            self.dirty = False

    def _stat(self, full: str) -> os.stat_result | None:
        """The path's stat (None when absent), noted for the plan memo either way."""
        try:
            st = os.stat(full)
        except OSError:
            self.seen.note(full, False)
            return None
        self.seen.note(full, key_of(st))
        return st

    def digest(self, rel: str) -> Digest:
        """The digest of a project-relative file or folder (ABSENT if missing)."""
        full = os.path.join(self.root, rel)
        st = self._stat(full)
        if st is None:
            return ABSENT
        if os.path.isdir(full):
            return self._digest_dir(rel, full)
        return Digest(self._file_hash(rel, full, st), st.st_size)

    def _file_hash(self, rel: str, full: str, st: os.stat_result, kind: str = "") -> str:
        """The file's hash (blake3; DVC's md5 with kind "md5:"), remembered under kind + rel."""
        # ctime too: an edit that keeps the size and puts the mtime back (cp -p, rsync -t,
        # touch -r) still moves the ctime, which no tool can set
        key = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, st.st_ctime_ns]
        hit = self.entries.get(kind + rel)
        if hit is not None and hit[:5] == key:
            return str(hit[5])
        digest = md5_file(full) if kind == "md5:" else _meaning_file(full) if kind == "py:" else _hash_file(full)
        # "racily clean" (as git calls it): a file modified within the clock's resolution
        # of being hashed may change again with the same mtime, so it is not remembered
        if time.time_ns() - st.st_mtime_ns > _RACY_NS:
            self.entries[kind + rel] = key + [digest]
            self.dirty = True
        return digest

    def code_digest(self, rel: str) -> CodeDigest:
        """A code file's hash: a python file's by its meaning (pycode.py says what counts),
        any other file, folder or DVC-tracked path's as source_digest has it."""
        full = os.path.join(self.root, rel)
        if not rel.endswith(".py") or dvc_pointer(self.root, rel) is not None:
            return CodeDigest(self.source_digest(rel).hash)
        self.seen.note(f"{full}.dvc")
        st = self._stat(full)
        if st is None or not stat.S_ISREG(st.st_mode):
            return CodeDigest(self.digest(rel).hash)
        data = self._file_hash(rel, full, st)
        meaning = self._file_hash(rel, full, st, "py:")
        return CodeDigest(meaning, data) if meaning else CodeDigest(data)

    def _digest_dir(self, rel: str, full: str) -> Digest:
        lines: list[str] = []
        total = 0
        for dirpath, dirnames, filenames in os.walk(full):
            self.seen.note(dirpath)  # its listing: an entry added or removed moves its times
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                sub = os.path.relpath(path, full).replace(os.sep, "/")
                st = os.lstat(path)
                self.seen.note_link(path, key_of(st))
                if stat.S_ISLNK(st.st_mode):  # a link is its target's name, dangling or not
                    lines.append(f"{sub}\tlink:{os.readlink(path)}\n")
                    continue
                lines.append(f"{sub}\t{self._file_hash(f'{rel}/{sub}', path, st)}\n")
                total += st.st_size
        return Digest("dir:" + hash_bytes("".join(lines).encode()), total)

    def source_digest(self, rel: str) -> Digest:
        """A source's digest: its bytes; for a DVC-tracked path, their hash as DVC writes it, or
        the pointer's when the data is not in the workspace (see the module's docstring)."""
        self.seen.note(os.path.join(self.root, f"{rel}.dvc"))
        pointer = dvc_pointer(self.root, rel)
        if pointer is None:
            return self.digest(rel)
        here = self.dvc_digest(rel)
        if not here.exists:
            return pointer
        if here.hash != pointer.hash:
            self.unrecorded[rel] = f"{rel}.dvc"
        return here

    def dvc_digest(self, rel: str) -> Digest:
        """The hash DVC would record for a workspace path: `md5:HEX` for a file, `md5:HEX.dir`
        (the md5 of its manifest of files) for a folder; ABSENT when it is not here."""
        full = os.path.join(self.root, rel)
        st = self._stat(full)
        if st is None:
            return ABSENT
        if not os.path.isdir(full):
            return Digest("md5:" + self._file_hash(rel, full, st, "md5:"), st.st_size)
        entries: list[dict[str, str]] = []
        total = 0
        for dirpath, dirnames, filenames in os.walk(full):
            self.seen.note(dirpath)  # its listing: an entry added or removed moves its times
            dirnames[:] = sorted(d for d in dirnames if d != ".dvc")
            for name in filenames:
                path = os.path.join(dirpath, name)
                sub = os.path.relpath(path, full).replace(os.sep, "/")
                fst = os.stat(path)
                self.seen.note(path, key_of(fst))
                entries.append({"md5": self._file_hash(f"{rel}/{sub}", path, fst, "md5:"), "relpath": sub})
                total += fst.st_size
        # DVC's tree object: the entries sorted by path, as json.dumps writes them
        manifest = json.dumps(sorted(entries, key=lambda e: e["relpath"]), sort_keys=True).encode()
        return Digest("md5:" + hashlib.md5(manifest, usedforsecurity=False).hexdigest() + ".dir", total)

    def unrecorded_notes(self) -> list[str]:
        """A line per DVC-tracked path whose workspace bytes differ from its pointer."""
        return [f"{rel} differs from {pointer}: run `mlmake data add {rel}`"
                for rel, pointer in sorted(self.unrecorded.items())]


def _warn(message: str) -> None:
    from mlmake.core import terminal

    terminal.warn_line(message)


def dvc_pointer(root: Path, rel: str) -> Digest | None:
    """The md5 and size recorded in `rel.dvc`, or None when DVC does not track rel."""
    pointer = root / f"{rel}.dvc"
    if not pointer.is_file():
        return None
    from mlmake.core.source import load_text

    try:
        data = load_text(pointer.read_text(encoding="utf-8"), str(pointer)).data
        out = data["outs"][0]
        return Digest("md5:" + str(out["md5"]), int(out.get("size", 0)))
    except Exception:  # noqa: BLE001 - a broken pointer reads as "changed", not a crash
        return Digest("md5:unreadable", 0)


@cache
def library_version(name: str) -> str:
    """The installed version of a distribution, without importing it (nor importlib.metadata,
    which costs more than the rest of a no-op plan's lookups): the first matching dist-info
    folder on sys.path, as importlib.metadata would find it."""
    import re
    import sys

    for dist in (name, f"{name}-cpu"):
        name_pattern = "[-_.]".join(re.escape(part) for part in dist.split("-"))
        wanted = re.compile(rf"^{name_pattern}-([^-]+)\.dist-info$", re.IGNORECASE)
        for folder in sys.path:
            for entry in _listing(folder or "."):
                match = wanted.match(entry)
                if match:
                    return match.group(1)
    return "missing"


@cache
def _listing(folder: str) -> tuple[str, ...]:
    try:
        return tuple(sorted(e for e in os.listdir(folder) if e.endswith(".dist-info")))
    except OSError:
        return ()
