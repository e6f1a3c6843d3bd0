"""The local state folder .mlmake/: its layout, each store's format version, and the one
atomic write every file mlmake keeps goes through (temp file, fsync, rename).

Layout (nothing here is committed; `rm -rf .mlmake` costs only time):
    build.lock            the exclusive lock of the one build running in the project
    tmp/                  staging of the build in progress (removed by the next lock holder)
    failed/ADDRESS/       what a failed node left, kept for a look
    logs/ADDRESS.log      each node's output
    runs.sqlite           the record of every node run (mlmake.state.records)
    runcache/            one JSON entry per fingerprint (mlmake.state.runcache)
    cache/                stores keyed by what they were made from, rebuilt when unreadable:
      hashes.json         file hashes keyed by stat (mlmake.state.hashing)
      lock.json           the lock's parse, keyed by the lock's bytes (mlmake.state.lock)
      spec.json, valid.json  the spec's parse and validation (mlmake.core.spec)
      plan/               the last plans, with the stat keys of what they read (mlmake.core.memo)

A store that cannot be read, or carries a version this mlmake does not know, is rebuilt
with a warning (see `discard`), never a crash. Stdlib only and cheap to import: the plan
memo reads its layout before anything else is loaded."""

from __future__ import annotations

import errno
import os

TYPE_CHECKING = False  # typing and pathlib stay unloaded: a kept plan is answered before them
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

STATE = ".mlmake"
CACHE = f"{STATE}/cache"
RUNS_DB = f"{STATE}/runs.sqlite"
RUNCACHE = f"{STATE}/runcache"
HASHES = f"{CACHE}/hashes.json"
LOCK_PARSE = f"{CACHE}/lock.json"
PLAN_MEMO = f"{CACHE}/plan"

# the format version of each store: a file written with another one is rebuilt
VERSIONS = {HASHES: 2, LOCK_PARSE: 1, RUNS_DB: 1, RUNCACHE: 1, PLAN_MEMO: 1}

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def staging_root(root: Path) -> Path:
    return root / STATE / "tmp"


def failed_root(root: Path) -> Path:
    return root / STATE / "failed"


def log_path(root: Path, address: str) -> Path:
    path = root / STATE / "logs" / f"{address}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def clean_staging(root: Path) -> None:
    """Remove what a killed build left half-written; only the build lock holder calls this."""
    import shutil

    shutil.rmtree(staging_root(root), ignore_errors=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Replace path by data: readers see the old file or the new one, never half, and a crash
    after the return leaves the new one (the bytes reach the disk before the rename).
    The temp file is removed when anything fails (a full disk, a read-only folder)."""
    target = os.fspath(path)
    body = data.encode("utf-8") if isinstance(data, str) else data
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    tmp = f"{os.path.join(os.path.dirname(target), '.' + os.path.basename(target))}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            _write_all(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException as exc:
        if isinstance(exc, OSError) and exc.filename in (None, tmp):
            exc.filename = target  # the file the user knows, not our temp name
        try:  # noqa: SIM105 - contextlib stays unloaded on the kept-plan path
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_cache(path: str | os.PathLike[str], data: bytes | str) -> bool:
    """write_atomic for a store that only saves time: a failure (full disk, read-only folder)
    is swallowed, the store is simply not kept. Whether it was written."""
    try:
        write_atomic(path, data)
    except OSError:
        return False
    return True


def read_json_store(path: str | os.PathLike[str], name: str, warn: Any = None) -> dict[str, Any] | None:
    """A JSON store's body when its version is the one this mlmake writes; None (after a warning
    through `warn`, when the file was there but not usable) when it must be rebuilt."""
    import json

    target = os.fspath(path)
    try:
        with open(target, encoding="utf-8") as f:
            body = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        discard(target, name, f"unreadable ({_reason(exc)})", warn)
        return None
    if not isinstance(body, dict) or body.get("version") != VERSIONS[name]:
        version = body.get("version") if isinstance(body, dict) else None
        discard(target, name, f"format version {version!r}, not {VERSIONS[name]}", warn)
        return None
    return body


def discard(path: str, name: str, why: str, warn: Any = None) -> None:
    """Remove a store that cannot be used and say so once (the caller rebuilds it)."""
    try:  # noqa: SIM105 - contextlib stays unloaded on the kept-plan path
        os.unlink(path)
    except OSError:
        pass  # a read-only folder: it is read around, and said again next time
    if warn is not None:
        warn(f"{name} was {why}; rebuilding it")


def move_aside(path: Path) -> Path:
    """Move a broken store out of the way (kept beside it for a look) and return where it went."""
    aside = path.with_name(path.name + ".corrupt")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt{n}")
    os.replace(path, aside)
    return aside


def is_no_space(exc: BaseException) -> bool:
    """A full disk or an exhausted quota, as OSError or as SQLite says it."""
    if isinstance(exc, OSError) and exc.errno in NO_SPACE:
        return True
    return "database or disk is full" in str(exc)


def environment_failure(exc: BaseException) -> str | None:
    """The message for a failure of the machine rather than of mlmake (a full disk, a read-only
    or forbidden folder), or None when exc is something else."""
    where = f"cannot write {exc.filename}: " if isinstance(exc, OSError) and exc.filename else ""
    if is_no_space(exc):
        return (f"error: {where}no space left on the device\n"
                "hint: free some space and run the command again (what was built before is kept)")
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"error: {where or 'cannot write: '}{exc.strerror}\n"
                "hint: make the project folder writable for this user, then run the command again")
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def move_into_place(src: Path, dest: Path) -> None:
    """Replace dest by src; the old version is moved aside first so a crash leaves one or the other."""
    import shutil

    dest.parent.mkdir(parents=True, exist_ok=True)
    trash = None
    if dest.exists() or dest.is_symlink():
        trash = src.parent / f".old-{dest.name}"
        shutil.rmtree(trash, ignore_errors=True)
        os.replace(dest, trash)
    os.replace(src, dest)
    if trash is not None:
        if trash.is_dir():
            shutil.rmtree(trash, ignore_errors=True)
        else:
            trash.unlink(missing_ok=True)


class BuildLock:
    """An exclusive lock on the project for one build (released by the OS if we die)."""

    def __init__(self, root: Path) -> None:
        self.path = root / STATE / "build.lock"
        self.fd: int | None = None

    def __enter__(self) -> BuildLock:
        import fcntl

        from mlmake.core.errors import LockBusyError

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise LockBusyError(f"another mlmake build is running in this project (pid {holder}); "
                                "wait for it to finish, or stop it") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
