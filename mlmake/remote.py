"""The DVC adapter, and the only module that imports dvc.

Every built output goes into the project's DVC cache (DVC's own md5 hashing, a
`.dir` manifest for folders) and is referenced from one DVC pointer file per node
in `.mlmake-artifacts/ADDRESS.dvc`, committed beside mlproject.lock. Plain
`dvc push` / `dvc pull` / `dvc checkout` therefore carry mlmake's artifacts too.
Run-cache entries travel to the remote under `mlmake/runcache/`."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mlmake.errors import MlmakeError
from mlmake.runcache import POINTERS, Hit, has_pointer, pointer_path
from mlmake.workdir import is_no_space, write_atomic

REMOTE_NAME = "mlmake"
_HEADER = "# Written by mlmake: DVC pointers to this node's outputs. Commit it with mlproject.lock.\n"


class RemoteError(MlmakeError):
    """The DVC cache or remote could not do what was asked; nothing was changed."""


def dvc_url(root: Path, url: str) -> str:
    """The remote URL for DVC's config API, which reads a relative folder from the
    working directory and stores it relative to .dvc/ (so any clone can use it)."""
    if "://" in url or os.path.isabs(url):
        return url
    return os.path.relpath(root.resolve() / url, os.getcwd())


class Store:
    """The project's DVC repository: local cache, pointers and the configured remote."""

    def __init__(self, root: Path, url: str, options: dict[str, Any] | None = None) -> None:
        self.root, self.url, self.options = root, url, dict(options or {})
        self._repo: Any = None

    @property
    def repo(self) -> Any:
        if self._repo is None:
            self._repo = _open(self.root)
            self._configure()
        return self._repo

    def ensure(self) -> None:
        """Set up DVC and its remote where missing."""
        _ = self.repo

    def close(self) -> None:
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def _configure(self) -> None:
        wanted = {"url": dvc_url(self.root, self.url), **{k: v for k, v in self.options.items()}}
        conf = self._repo.config
        current = dict(conf.get("remote", {}).get(REMOTE_NAME, {}))
        # DVC reads a local folder back as an absolute path
        same_url = _comparable(current.get("url")) == _comparable(wanted["url"])
        same_rest = all(current.get(k) == v for k, v in wanted.items() if k != "url")
        if same_url and same_rest and conf["core"].get("remote") == REMOTE_NAME:
            return
        with self._repo.config.edit() as edit:
            edit["remote"][REMOTE_NAME] = wanted
            edit["core"]["remote"] = REMOTE_NAME
            edit["core"]["analytics"] = False

    # --- the local cache ---------------------------------------------------------

    def add(self, address: str, outputs: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Put outputs into the DVC cache and write the node's pointer; their DVC hashes."""
        from dvc.exceptions import DvcException
        from dvc_data.hashfile.build import build
        from dvc_data.hashfile.transfer import transfer

        odb = self.repo.cache.local
        found: dict[str, dict[str, Any]] = {}
        for out in outputs:
            # no progress bars here (no callback), and nothing redirected: a build saves on a
            # thread of its own while the main thread reports
            try:
                with _quiet():
                    staging, meta, obj = build(odb, str(self.root / out), odb.fs, "md5")
                    transfer(staging, odb, {obj.hash_info}, hardlink=False, shallow=False)
            except (OSError, DvcException) as exc:
                raise RemoteError(f"cannot put {out} into the DVC cache {odb.path}: {exc}") from None
            found[out] = {"md5": obj.hash_info.value, "size": meta.size}
            if meta.isdir:
                found[out]["nfiles"] = meta.nfiles
        self.write_pointer(address, found)
        return found

    def write_pointer(self, address: str, outputs: dict[str, dict[str, Any]]) -> None:
        """The node's .dvc file listing its outputs (path relative to the pointer)."""
        lines = [_HEADER, "outs:\n"]
        for out, info in sorted(outputs.items()):
            rel = os.path.relpath(self.root / out, self.root / POINTERS).replace(os.sep, "/")
            lines.append(f"- md5: {info['md5']}\n  size: {info['size']}\n")
            if "nfiles" in info:
                lines.append(f"  nfiles: {info['nfiles']}\n")
            lines.append(f"  hash: md5\n  path: {rel}\n")
        write_atomic(pointer_path(self.root, address), "".join(lines))

    def checkout(self, address: str, *, quiet: bool = False) -> None:
        """Put a node's outputs in the workspace from the local cache."""
        self._call("checkout", quiet=quiet, targets=[str(pointer_path(self.root, address))], force=True)

    def drop_cached(self, md5: str) -> None:
        """Remove one object from the local cache (it was found corrupted)."""
        odb = self.repo.cache.local
        path = odb.oid_to_path(md5)
        if os.path.exists(path):
            os.chmod(path, 0o644)
            os.remove(path)

    def add_data(self, paths: Iterable[str]) -> list[str]:
        """Put raw data under DVC the standard way: PATH.dvc beside it, the data git-ignored."""
        paths = list(paths)
        self._call("add", targets=[str(self.root / p) for p in paths])
        return [f"{p}.dvc" for p in paths]

    # --- the remote --------------------------------------------------------------

    def fetch(self, addresses: Iterable[str], *, quiet: bool = False) -> None:
        self._call("fetch", quiet=quiet, targets=self._targets(addresses))

    def pointer_md5s(self, address: str) -> dict[str, dict[str, Any]]:
        """The outputs a node's pointer names, by project-relative path."""
        from mlmake.source import load_text

        path = pointer_path(self.root, address)
        try:
            outs = load_text(path.read_text(encoding="utf-8"), str(path)).data["outs"]
            return {os.path.normpath(os.path.join(POINTERS, o["path"])).replace(os.sep, "/"):
                    {"md5": o["md5"], "size": o.get("size", 0)} for o in outs}
        except (OSError, MlmakeError, KeyError, TypeError):
            return {}

    def push(self, addresses: Iterable[str], data: Iterable[str] = ()) -> int:
        """Upload the nodes' objects and the raw data's (PATH.dvc); re-upload what a cut push left out."""
        targets = self._targets(addresses) + [str(self.root / f"{p}.dvc") for p in data]
        self._forget_incomplete_dirs(targets)
        return int(self._call("push", targets=targets) or 0)

    def pull_data(self, paths: Iterable[str]) -> None:
        """Raw data tracked by PATH.dvc files."""
        self._call("pull", targets=[str(self.root / f"{p}.dvc") for p in paths], force=True)

    def _targets(self, addresses: Iterable[str]) -> list[str]:
        return [str(pointer_path(self.root, a)) for a in addresses if has_pointer(self.root, a)]

    def _forget_incomplete_dirs(self, targets: list[str]) -> None:
        """DVC skips a folder whose .dir manifest is on the remote, even if a file of it is
        missing (an interrupted upload): drop such manifests so the push sends the files again."""
        remote = self._remote()
        local = self.repo.cache.local
        for md5 in _dir_md5s(targets):
            manifest = local.oid_to_path(md5)
            if not os.path.exists(manifest):
                continue
            with open(manifest, encoding="utf-8") as f:
                files = [e["md5"] for e in json.load(f)]
            with self._errors("push"):
                if remote.odb.exists(md5) and not all(remote.odb.exists(m) for m in files):
                    remote.odb.fs.rm(remote.odb.oid_to_path(md5))

    def _call(self, verb: str, *, quiet: bool = False, **kwargs: Any) -> Any:
        if verb not in ("checkout", "add") and not kwargs.get("targets"):
            return 0
        with (self._errors(verb), _quiet(logging.CRITICAL if quiet else logging.WARNING),
              contextlib.redirect_stdout(io.StringIO())):
            if verb in ("push", "pull", "fetch") and not quiet:  # transfers keep DVC's progress bars
                return getattr(self.repo, verb)(**kwargs)
            with contextlib.redirect_stderr(io.StringIO()):
                return getattr(self.repo, verb)(**kwargs)

    @contextlib.contextmanager
    def _errors(self, verb: str) -> Iterator[None]:
        """DVC's failures as one RemoteError that names the remote and what to do."""
        from dvc.exceptions import DvcException

        where = f"remote '{REMOTE_NAME}' ({self.url})"
        try:
            yield
        except ImportError as exc:  # dvc raises it for an s3:// or ssh:// remote without its plugin
            plugin = _plugin_for(self.url)
            raise RemoteError(f"{where} needs a DVC plugin: pip install {plugin} ({exc})") from None
        except DvcException as exc:
            raise RemoteError(f"dvc {verb} failed for {where}: {exc}") from None
        except OSError as exc:
            if is_no_space(exc):
                raise RemoteError(f"{where} is full: {exc.strerror or exc}; free space there and run "
                                  f"the command again (nothing here was changed)") from None
            raise RemoteError(f"{where} is not reachable: {exc}") from None

    def _remote(self) -> Any:
        with self._errors("remote"):
            return self.repo.cloud.get_remote(REMOTE_NAME)

    def check_reachable(self) -> None:
        """Raise RemoteError when the remote cannot be used at all (a missing folder is empty)."""
        remote = self._remote()
        with self._errors("pull"):
            if remote.fs.exists(remote.path) and not remote.fs.isdir(remote.path):
                raise NotADirectoryError(f"{remote.path} is not a folder")

    def push_runs(self, hits: Iterable[Hit]) -> None:
        """Upload run-cache entries next to the artifacts."""
        remote = self._remote()
        base = remote.fs.join(remote.path, "mlmake", "runcache")
        try:
            remote.fs.makedirs(base, exist_ok=True)
            for hit in hits:
                remote.fs.pipe_file(remote.fs.join(base, f"{hit.fingerprint}.json"),
                                    json.dumps(hit.to_dict(), sort_keys=True).encode())
        except OSError as exc:
            raise RemoteError(f"remote '{REMOTE_NAME}' ({self.url}) is not reachable: {exc}") from None

    def fetch_run(self, fingerprint: str) -> dict[str, Any] | None:
        """A run-cache entry from the remote, or None."""
        remote = self._remote()
        path = remote.fs.join(remote.path, "mlmake", "runcache", f"{fingerprint}.json")
        try:
            data = json.loads(remote.fs.cat_file(path))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise RemoteError(f"remote '{REMOTE_NAME}' ({self.url}) is not reachable: {exc}") from None
        return data if isinstance(data, dict) else None


@contextlib.contextmanager
def _quiet(threshold: int = logging.WARNING) -> Iterator[None]:
    """DVC's log messages below threshold dropped (its "Initialized DVC repository", …)."""
    logger = logging.getLogger("dvc")
    level = logger.level
    logger.setLevel(threshold)
    try:
        yield
    finally:
        logger.setLevel(level)


def _plugin_for(url: str) -> str:
    scheme = url.split("://", 1)[0] if "://" in url else "local"
    return {"s3": "dvc-s3", "gs": "dvc-gs", "gcs": "dvc-gs", "azure": "dvc-azure", "ssh": "dvc-ssh",
            "hdfs": "dvc-hdfs", "webdav": "dvc-webdav", "webdavs": "dvc-webdav", "oss": "dvc-oss",
            "gdrive": "dvc-gdrive", "http": "dvc-http", "https": "dvc-http"}.get(scheme, f"dvc[{scheme}]")


def _dir_md5s(pointers: list[str]) -> list[str]:
    from mlmake.source import load_text

    found = []
    for path in pointers:
        try:
            outs = load_text(Path(path).read_text(encoding="utf-8"), path).data["outs"]
        except (OSError, MlmakeError, KeyError, TypeError):
            continue
        found += [str(o["md5"]) for o in outs if str(o.get("md5", "")).endswith(".dir")]
    return found


def _comparable(url: Any) -> str:
    text = str(url or "")
    return text if "://" in text or not text else os.path.abspath(text)


def _open(root: Path) -> Any:
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        if (root / ".dvc").is_dir():
            return Repo(str(root))
        top = _git_top(root)
        with _quiet():  # DVC's own "Initialized DVC repository"
            if top is None:
                return Repo.init(str(root), no_scm=True)
            return Repo.init(str(root), subdir=top != root.resolve())
    except DvcException as exc:
        raise RemoteError(f"cannot set up DVC in {root}: {exc}") from None


def _git_top(root: Path) -> Path | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.stdout.strip()).resolve() if out.returncode == 0 and out.stdout.strip() else None
