"""The local state folder .mlmake/: the build lock, staging, logs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from mlmake.errors import LockBusyError

STATE = ".mlmake"


def staging_root(root: Path) -> Path:
    return root / STATE / "tmp"


def log_path(root: Path, address: str) -> Path:
    path = root / STATE / "logs" / f"{address}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def clean_staging(root: Path) -> None:
    """Remove what a killed build left half-written; only the build lock holder calls this."""
    shutil.rmtree(staging_root(root), ignore_errors=True)


def move_into_place(src: Path, dest: Path) -> None:
    """Replace dest by src; the old version is moved aside first so a crash leaves one or the other."""
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
