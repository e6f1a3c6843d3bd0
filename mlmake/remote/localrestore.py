"""A node's outputs put back from DVC's object folders without opening DVC: the restore of a
fresh clone from the machine's default remote (or any remote in a folder on this machine), and
from the project's own DVC cache. Opening DVC, its fetch and its checkout cost a build about a
second; copying the objects costs their bytes.

Each object is read once and written twice (to its place, and into the project's DVC cache when
it came from the remote), and the bytes are hashed as they pass, as mlmake's hasher hashes
them: an output is put in place only when its hash is the one the lock records, so a restored
output is checked as a rebuilt one would be. Objects copied from the remote go into the DVC
cache read-only, as DVC's own fetch leaves them (it does not hash them again either: a remote's
`verify` is off by default; with it on, DVC does the restore), and only once their output
matched. A `.dir` listing is small: its md5 is checked against its name. When an output does
not match, the md5s of its objects name the corrupted one (dropped from the project's cache,
then taken from the remote), and nothing is put in the workspace.

Anything this does not expect (a pointer mlmake did not write, a DVC configuration that moves
the cache or changes how it links, an object in neither place, an empty folder) answers False,
and DVC does the restore. The layout (files/md5/XX/REST; a folder's `.dir` object: a JSON list
of md5 and relpath sorted by relpath, named by its own md5) is DVC 3's. Stdlib and blake3
only: the adapter stays the only module that imports DVC."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlmake.core.errors import MlmakeError
from mlmake.core.workdir import move_into_place, staging_root
from mlmake.state.hashing import hash_bytes
from mlmake.state.remotecache import object_path
from mlmake.state.runcache import POINTERS, pointer_path

_CHUNK = 1 << 20
CACHE_MODE = 0o444  # DVC's mode for the objects in its cache
_OUT = re.compile(r"^- md5: ([0-9a-f]{32}(?:\.dir)?)\n  size: \d+\n(?:  nfiles: \d+\n)?  hash: md5\n"
                  r"  path: ([^\n]+)\n", re.MULTILINE)
# DVC settings this does not follow: the cache's own section, a remote that verifies what it sends
_DEPARTS = re.compile(r"^\s*(\[\s*cache\s*\]|verify\s*=\s*(true|yes|1)\s*$)", re.MULTILINE | re.IGNORECASE)


class Refused(MlmakeError):
    """An object or a restored output failed its check; nothing was put in the workspace."""


class _Dropped(Exception):
    """A corrupted object was removed from the project's DVC cache: the remote's copy may do."""


@dataclass(frozen=True, slots=True)
class Piece:
    """One file of an output: its object's md5 and its path inside the output ('' for a file)."""

    md5: str
    sub: str


@dataclass(frozen=True, slots=True)
class _Copy:
    """A file of an output, copied from where its object is to its place in the staging folder
    (and, when the object came from the remote, to a spare name beside it in the cache)."""

    out: str
    piece: Piece
    source: Path
    target: Path
    spare: Path | None


class LocalRestore:
    """Restores from the project's DVC cache and, when given, a remote in a local folder."""

    def __init__(self, root: Path, remote: Path | None, warn: Callable[[str], None], *, repair: bool = False) -> None:
        self.root, self.remote, self.warn = root, remote, warn
        self.repair = repair  # the machine's default remote: a corrupted object is removed from it
        self.cache = root / ".dvc" / "cache"

    def usable(self) -> bool:
        """DVC is set up here, its cache where DVC puts it by default and linked by copies."""
        configs = _dvc_configs(self.root)
        return (self.root / ".dvc").is_dir() and configs is not None and not any(map(_departs, configs))

    def serves_remote(self) -> bool:
        """Whether objects missing here are copied from the remote without DVC."""
        return self.remote is not None and self.usable()

    def restore(self, address: str, outputs: Mapping[str, Mapping[str, Any]], *, fetch: bool) -> bool:
        """Put back the outputs the node's pointer names, checked against the hashes `outputs`
        records (from the remote too with fetch): True when done; False when DVC must do it.
        Raises Refused when an object or an output is corrupted: nothing in the workspace changed."""
        pointed = pointer_outputs(self.root, address)
        if pointed is None or set(pointed) != set(outputs) or not self.usable():
            return False
        recorded = {out: str(o.get("hash", "")) for out, o in outputs.items()}
        again = "; fetching it again" if fetch and self.remote is not None else ""
        while True:  # each pass that drops a corrupted object from the cache takes it elsewhere next
            try:
                return self._restore(pointed, recorded, fetch)
            except _Dropped as exc:
                self.warn(f"{address}: {exc}{again}")
            except OSError:  # an unreadable object, a full disk: DVC tries, and says what failed
                return False

    def restore_outputs(self, pointed: dict[str, str], recorded: dict[str, str], *, fetch: bool) -> bool:
        """Outputs put back by their md5s alone (a registered version's, from its tag: no
        pointer), checked against the hashes `recorded`; False when an object is not here."""
        while True:
            try:
                return self._restore(pointed, recorded, fetch)
            except _Dropped as exc:
                self.warn(str(exc))
            except OSError:
                return False

    def _restore(self, pointed: dict[str, str], recorded: dict[str, str], fetch: bool) -> bool:
        stage = staging_root(self.root) / f"restore-{uuid.uuid4().hex[:12]}"
        places = {out: stage / str(i) for i, out in enumerate(sorted(pointed))}
        copies: list[_Copy] = []
        try:
            for out, md5 in pointed.items():
                found = self._plan(out, md5, places[out], fetch)
                if found is None:
                    return False
                copies += found
            with ThreadPoolExecutor(max_workers=max(1, min(len(copies), os.cpu_count() or 1))) as pool:
                hashes = list(pool.map(_copy, copies))
            for out, want in recorded.items():
                mine = [(c, h) for c, h in zip(copies, hashes, strict=True) if c.out == out]
                if _output_hash([(c.piece, h) for c, h in mine]) != want:
                    self._name_corrupted([c for c, _ in mine])
                    raise Refused(f"restored {out} does not match its recorded hash")
            for c in copies:  # each object's output matched: it joins the cache, as DVC's fetch does
                if c.spare is not None:
                    os.chmod(c.spare, CACHE_MODE)
                    os.replace(c.spare, object_path(self.cache, c.piece.md5))
            for out, place in places.items():
                move_into_place(place, self.root / out)
            return True
        finally:
            shutil.rmtree(stage, ignore_errors=True)
            for c in copies:
                if c.spare is not None:
                    c.spare.unlink(missing_ok=True)

    def _plan(self, out: str, md5: str, place: Path, fetch: bool) -> list[_Copy] | None:
        """The copies that make an output; None when an object is in neither place."""
        copies = []
        for piece in self._pieces(out, md5, fetch) or []:
            source = self._object(piece.md5, fetch)
            if source is None:
                return None
            fetched = not source.is_relative_to(self.cache)
            copies.append(_Copy(out, piece, source, place / piece.sub if piece.sub else place,
                                _spare(object_path(self.cache, piece.md5)) if fetched else None))
        return copies or None

    def _pieces(self, out: str, md5: str, fetch: bool) -> list[Piece] | None:
        """The files of an output: itself, or those its folder listing names (None: not here)."""
        if not md5.endswith(".dir"):
            return [Piece(md5, "")]
        source = self._object(md5, fetch)
        if source is None:
            return None
        data = source.read_bytes()
        if _md5(data) != md5.removesuffix(".dir"):
            self._corrupted(source, md5, out)
        pieces = _listing(data)
        if pieces is None:
            raise Refused(f"the folder listing {md5} of {out} is not one DVC writes")
        if not source.is_relative_to(self.cache):
            _add_to_cache(object_path(self.cache, md5), data)
        return pieces

    def _object(self, md5: str, fetch: bool) -> Path | None:
        """Where an object is: the project's DVC cache, else (with fetch) the remote."""
        cached = object_path(self.cache, md5)
        if cached.is_file():
            return cached
        remote = object_path(self.remote, md5) if self.remote is not None and fetch else None
        return remote if remote is not None and remote.is_file() else None

    def _name_corrupted(self, copies: list[_Copy]) -> None:
        """An output did not match: the object whose bytes do not match its md5, if one does not."""
        for c in copies:
            with open(c.source, "rb") as f:
                if hashlib.file_digest(f, "md5").hexdigest() != c.piece.md5:
                    self._corrupted(c.source, c.piece.md5, c.out)

    def _corrupted(self, source: Path, md5: str, out: str) -> None:
        """An object whose bytes do not match its name: removed from the project's cache (the
        remote may have it), or refused, named, when it is the remote's (and removed from the
        machine's default remote, so that the node built instead is shared in its place)."""
        if source.is_relative_to(self.cache):
            _remove(source)
            raise _Dropped(f"object {md5} of {out} in the DVC cache is corrupted (its bytes do not match its "
                           "md5): removed from the cache")
        if self.repair:
            _remove(source)
        raise Refused(f"object {md5} of {out} on the remote ({self.remote}) is corrupted (its bytes do not "
                      "match its md5)" + (": removed from the remote" if self.repair else ""))


def _copy(job: _Copy) -> str:
    """One object copied to its place (and its spare in the cache); the blake3 hash of its bytes,
    as mlmake's hasher writes it. The bytes are hashed and written by the C libraries, which let
    other threads run meanwhile."""
    from blake3 import blake3

    job.target.parent.mkdir(parents=True, exist_ok=True)
    hasher, buffer = blake3(), bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(job.source, "rb", buffering=0) as src, open(job.target, "wb", buffering=0) as dest, \
            open(job.spare or os.devnull, "wb", buffering=0) as spare:
        while n := src.readinto(buffer):
            hasher.update(view[:n])
            _write_all(dest, view[:n])
            if job.spare is not None:
                _write_all(spare, view[:n])
    return str(hasher.hexdigest(length=16))


def _write_all(f: Any, data: memoryview) -> None:
    """An unbuffered write may take part of the bytes: the rest follows."""
    while data:
        data = data[f.write(data):]


def pointer_outputs(root: Path, address: str) -> dict[str, str] | None:
    """Output path → md5 from a pointer as mlmake writes it; None for any other pointer."""
    try:
        text = pointer_path(root, address).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    outs = body.removeprefix("outs:\n")
    found = _OUT.findall(outs)
    if not found or outs == body or _OUT.sub("", outs):  # anything else in it: DVC reads it
        return None
    return {os.path.normpath(os.path.join(POINTERS, path)).replace(os.sep, "/"): md5 for md5, path in found}


def _listing(data: bytes) -> list[Piece] | None:
    """A `.dir` object's files, when it lists only md5s and relative paths inside the folder."""
    try:
        entries = json.loads(data)
        pieces = [Piece(e["md5"], e["relpath"]) for e in entries if set(e) == {"md5", "relpath"}]
    except (ValueError, TypeError, KeyError):
        return None
    if len(pieces) != len(entries):
        return None
    for p in pieces:
        if not re.fullmatch(r"[0-9a-f]{32}", p.md5) or "\\" in p.sub \
                or any(part in ("", ".", "..") for part in p.sub.split("/")):
            return None
    return pieces


def _output_hash(files: list[tuple[Piece, str]]) -> str:
    """An output's hash from its files' hashes, as mlmake's hasher computes it: a file's own, or
    a folder's listing of path and hash in the order a sorted os.walk visits them (a folder's
    own files, sorted, before its subfolders, sorted)."""
    if len(files) == 1 and not files[0][0].sub:
        return files[0][1]

    def walk_order(sub: str) -> tuple[tuple[int, str], ...]:
        parts = sub.split("/")
        return tuple((1, part) for part in parts[:-1]) + ((0, parts[-1]),)

    lines = sorted(files, key=lambda ph: walk_order(ph[0].sub))
    return "dir:" + hash_bytes("".join(f"{p.sub}\t{h}\n" for p, h in lines).encode())


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _spare(final: Path) -> Path:
    """A temporary name beside an object in the cache (DVC's own are NAME.tmp there too)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.with_name(f"{final.name}.{uuid.uuid4().hex[:12]}.tmp")


def _remove(path: Path) -> None:
    os.chmod(path, 0o644)
    path.unlink(missing_ok=True)


def _add_to_cache(final: Path, data: bytes) -> None:
    spare = _spare(final)
    try:
        spare.write_bytes(data)
        os.chmod(spare, CACHE_MODE)
        os.replace(spare, final)
    finally:
        spare.unlink(missing_ok=True)


def _dvc_configs(root: Path) -> list[Path] | None:
    """DVC's config files that apply here: the project's, the user's and the system's (None
    where this does not know where DVC keeps them)."""
    if sys.platform not in ("linux", "darwin"):
        return None
    home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    system = Path((os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep)[0])
    if sys.platform == "darwin":
        home, system = Path.home() / "Library" / "Application Support", Path("/Library/Application Support")
    user_dir = os.environ.get("DVC_GLOBAL_CONFIG_DIR") or str(home / "dvc")
    system_dir = os.environ.get("DVC_SYSTEM_CONFIG_DIR") or str(system / "dvc")
    return [root / ".dvc" / "config", root / ".dvc" / "config.local", Path(user_dir) / "config",
            Path(system_dir) / "config"]


def _departs(path: Path) -> bool:
    """Whether a DVC config file sets what this does not follow (an unreadable one: as if it did)."""
    try:
        return bool(_DEPARTS.search(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError):
        return True
