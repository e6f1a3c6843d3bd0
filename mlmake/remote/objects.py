"""Files by their content on the DVC remote: what a Dask build's client and workers exchange
when they share no disk. Each file is an object named by its md5 in DVC 3's layout
(files/md5/XX/REST), so what a worker pushes is what `dvc push` would push, and a later
restore or `mlmake pull` finds it there. A remote in a folder (on this machine, or mounted at
the same path on every worker) is read and written directly; any other URL goes through
fsspec, with the plugin of its scheme installed (s3fs for s3://, gcsfs for gs://, …).
Every object is written under a temporary name and renamed, so a worker killed mid-push
never leaves a partial object under an md5."""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlmake.core.errors import MlmakeError
from mlmake.state.hashing import md5_file

MODE = 0o444  # objects are never written in place once named (DVC's cache mode)


class ObjectError(MlmakeError):
    """An object could not be read from or written to the remote."""


@dataclass(frozen=True, slots=True)
class Piece:
    """One file of an output or input: its path inside it ('' for the path itself) and its md5."""

    sub: str
    md5: str


def files_of(path: Path) -> list[Path]:
    """The files of a path: itself, or a folder's files (sorted, symlinks to files followed)."""
    if not path.is_dir():
        return [path]
    found = []
    for folder, dirs, names in os.walk(path):
        dirs.sort()
        found += [Path(folder) / n for n in sorted(names) if os.path.isfile(os.path.join(folder, n))]
    return found


def relative(path: Path, top: Path) -> str:
    """A file's path inside top ('' for top itself), with forward slashes."""
    return "" if path == top else path.relative_to(top).as_posix()


def object_key(md5: str) -> str:
    return f"files/md5/{md5[:2]}/{md5[2:]}"


class Objects:
    """The remote's objects: has, put and get by md5."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.local = "://" not in url or url.startswith("file://")
        self._fs: Any = None

    def has(self, md5: str) -> bool:
        if self.local:
            return self._path(md5).is_file()
        return bool(self._remote_fs().exists(self._url(md5)))

    def put(self, source: Path, md5: str) -> None:
        """The file's bytes as object md5, unless the remote has it already."""
        if self.has(md5):
            return
        try:
            if self.local:
                _copy_atomic(source, self._path(md5))
            else:
                spare = f"{self._url(md5)}.{uuid.uuid4().hex[:12]}.tmp"
                fs = self._remote_fs()
                fs.put_file(str(source), spare)
                fs.mv(spare, self._url(md5))
        except OSError as exc:
            raise ObjectError(f"cannot push {source.name} to the remote {self.url}: {exc.strerror or exc}") from None

    def get(self, md5: str, dest: Path) -> None:
        """Object md5 written to dest (replacing it atomically), checked against its md5."""
        spare = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            if self.local:
                _copy_atomic(self._path(md5), spare, mode=None)
            else:
                spare.parent.mkdir(parents=True, exist_ok=True)
                self._remote_fs().get_file(self._url(md5), str(spare))
            if md5_file(spare) != md5:
                raise ObjectError(f"object {md5} on the remote {self.url} is corrupted (its bytes do not match "
                                  "its md5)")
            os.replace(spare, dest)
        except FileNotFoundError:
            raise ObjectError(f"object {md5} is not on the remote {self.url}") from None
        except OSError as exc:
            raise ObjectError(f"cannot fetch object {md5} from the remote {self.url}: {exc.strerror or exc}") \
                from None
        finally:
            spare.unlink(missing_ok=True)

    def _path(self, md5: str) -> Path:
        return Path(self.url.removeprefix("file://")) / object_key(md5)

    def _url(self, md5: str) -> str:
        return f"{self.url}/{object_key(md5)}"

    def _remote_fs(self) -> Any:
        if self._fs is None:
            from fsspec.core import url_to_fs

            try:
                self._fs = url_to_fs(self.url)[0]
            except (ImportError, ValueError) as exc:  # no fsspec plugin for its scheme, a malformed URL
                raise ObjectError(f"cannot open the remote {self.url}: {exc}") from None
        return self._fs


def _copy_atomic(source: Path, dest: Path, mode: int | None = MODE) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    spare = dest.with_name(f"{dest.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        shutil.copyfile(source, spare)
        if mode is not None:
            os.chmod(spare, mode)
        os.replace(spare, dest)
    finally:
        spare.unlink(missing_ok=True)
