"""The DVC adapter, and the only module that imports dvc.

Every built output goes into the project's DVC cache (DVC's own md5 hashing, a
`.dir` manifest for folders) and is referenced from one DVC pointer file per node
in `.mlmake-artifacts/ADDRESS.dvc`, committed beside mlproject.lock. Plain
`dvc push` / `dvc pull` / `dvc checkout` therefore carry mlmake's artifacts too.
Run-cache entries travel to the remote under `mlmake/runcache/`."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import MlmakeError
from mlmake.core.workdir import is_no_space, write_atomic
from mlmake.state.remotecache import Location, locate
from mlmake.state.runcache import POINTERS, Hit, has_pointer, pointer_path

if TYPE_CHECKING:
    from mlmake.core.spec import Project

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

    def __init__(self, root: Path, location: Location, warn: Callable[[str], None] | None = None) -> None:
        self.root, self.location = root, location
        self.url, self.options = location.url, dict(location.options)
        self.warn = warn or (lambda _message: None)
        self._repo: Any = None

    @classmethod
    def of(cls, project: Project, warn: Callable[[str], None] | None = None) -> Store:
        """The store of a loaded project: its `remote:`, or the machine's default remote."""
        remote = project.remote
        return cls(project.root, locate(project.root, remote.url if remote else None,
                                        remote.options if remote else None), warn)

    @property
    def repo(self) -> Any:
        if self._repo is None:
            self._repo = _open(self.root, self.warn)
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
        """The remote in .dvc/config (committed) when mlproject.yaml names one; the machine's
        default in .dvc/config.local (never committed: its folder is this machine's)."""
        wanted = {"url": dvc_url(self.root, self.url), **{k: v for k, v in self.options.items()}}
        level, other = ("local", "repo") if self.location.default else ("repo", "local")
        conf = self._repo.config
        current = dict(conf.load_one(level).get("remote", {}).get(REMOTE_NAME, {}))
        # DVC reads a local folder back as an absolute path
        same_url = _comparable(current.get("url")) == _comparable(wanted["url"])
        same_rest = all(current.get(k) == v for k, v in wanted.items() if k != "url")
        shadowed = REMOTE_NAME in conf.load_one(other).get("remote", {}) and self.location.default is False
        if same_url and same_rest and conf.load_one(level).get("core", {}).get("remote") == REMOTE_NAME \
                and not shadowed:
            return
        with conf.edit(level) as edit:
            edit["remote"][REMOTE_NAME] = wanted
            edit["core"]["remote"] = REMOTE_NAME
            edit["core"]["analytics"] = False
        if shadowed:  # a default set here before would win over the remote mlproject.yaml names
            with conf.edit(other) as edit:
                edit["remote"].pop(REMOTE_NAME, None)
                if edit["core"].get("remote") == REMOTE_NAME:
                    edit["core"].pop("remote", None)

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

    def checkout_all(self, addresses: Iterable[str]) -> None:
        """Put many nodes' outputs in the workspace from the local cache, in one DVC call."""
        targets = self._targets(addresses)
        if targets:  # none would check out every pointer of the repository
            self._call("checkout", quiet=True, targets=targets, force=True)

    def checkout_pointer(self, pointer: Path) -> None:
        """Fetch (from the remote where missing) and check out the outputs a pointer names that
        is not a node's (a registered version's, written for the moment in .mlmake-artifacts/)."""
        self._call("fetch", quiet=True, targets=[str(pointer)])
        self._call("checkout", quiet=True, targets=[str(pointer)], force=True)

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
        from mlmake.core.source import load_text

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
        """DVC's failures as one RemoteError that says where it failed and what to do: work
        on this project's own cache names the project, transfers name the remote."""
        from dvc.exceptions import CheckoutError, DvcException
        from dvc_objects.errors import ObjectFormatError

        local = verb in ("add", "checkout")
        where = f"in {self.root}" if local else f"for remote '{REMOTE_NAME}' ({self.url})"
        try:
            yield
        except ImportError as exc:  # dvc raises it for an s3:// or ssh:// remote without its plugin
            plugin = _plugin_for(self.url)
            raise RemoteError(f"remote '{REMOTE_NAME}' ({self.url}) needs a DVC plugin: pip install {plugin} "
                              f"({exc})") from None
        except ObjectFormatError as exc:  # a damaged object, from the remote or in the cache
            oid = _oid_in(str(exc))
            if oid:
                self.drop_cached(oid)  # never used again: the next fetch or build replaces it
            raise RemoteError(f"dvc {verb} failed {where}: object {oid or exc} is corrupted (its bytes do not "
                              "match its md5); removed from the local cache") from None
        except CheckoutError as exc:  # DVC's message lists the targets over lines, then a link
            missing = ", ".join(os.path.relpath(str(t), self.root) for t in exc.target_infos)
            raise RemoteError(f"dvc {verb} failed {where}: not in the DVC cache: {missing}") from None
        except DvcException as exc:
            raise RemoteError(f"dvc {verb} failed {where}: {exc}") from None
        except OSError as exc:
            if is_no_space(exc):
                place = f"the DVC cache in {self.root}" if local else f"remote '{REMOTE_NAME}' ({self.url})"
                raise RemoteError(f"{place} is full: {exc.strerror or exc}; free space there and run "
                                  f"the command again (nothing here was changed)") from None
            if local:
                raise RemoteError(f"dvc {verb} failed {where}: {exc}") from None
            raise RemoteError(f"remote '{REMOTE_NAME}' ({self.url}) is not reachable: {exc}") from None
        except (ValueError, KeyError, TypeError) as exc:  # a damaged object: a `.dir` listing that is not one
            raise RemoteError(f"dvc {verb} failed {where}: a damaged object ({type(exc).__name__}: {exc})") \
                from None

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

    def share(self, hit: Hit) -> None:
        """On the machine's default remote a built node is shared at once (its objects and its
        run-cache entry), so another clone restores it; a configured remote waits for `push`."""
        if not self.location.automatic:
            return
        from dvc_data.hashfile.hash_info import HashInfo
        from dvc_data.hashfile.transfer import transfer

        ids = {HashInfo("md5", str(o["md5"])) for o in hit.outputs.values() if o.get("md5")}
        remote = self._remote()
        with self._errors("push"), _quiet():
            for info in ids:  # a damaged folder listing on the remote would hide the good one for ever
                _drop_if_damaged(remote.odb, str(info.value))
            transfer(self.repo.cache.local, remote.odb, ids, shallow=False, hardlink=False)
        self.push_runs([hit])

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
    loggers = [logging.getLogger(name) for name in ("dvc", "dvc_data", "dvc_objects")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(threshold)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _plugin_for(url: str) -> str:
    scheme = url.split("://", 1)[0] if "://" in url else "local"
    return {"s3": "dvc-s3", "gs": "dvc-gs", "gcs": "dvc-gs", "azure": "dvc-azure", "ssh": "dvc-ssh",
            "hdfs": "dvc-hdfs", "webdav": "dvc-webdav", "webdavs": "dvc-webdav", "oss": "dvc-oss",
            "gdrive": "dvc-gdrive", "http": "dvc-http", "https": "dvc-http"}.get(scheme, f"dvc[{scheme}]")


def _dir_md5s(pointers: list[str]) -> list[str]:
    from mlmake.core.source import load_text

    found = []
    for path in pointers:
        try:
            outs = load_text(Path(path).read_text(encoding="utf-8"), path).data["outs"]
        except (OSError, MlmakeError, KeyError, TypeError):
            continue
        found += [str(o["md5"]) for o in outs if str(o.get("md5", "")).endswith(".dir")]
    return found


def _drop_if_damaged(odb: Any, oid: str) -> None:
    """Remove a `.dir` object whose bytes do not match its name from an object store (they are small)."""
    if not oid.endswith(".dir") or not odb.exists(oid):
        return
    path = odb.oid_to_path(oid)
    if hashlib.md5(odb.fs.cat_file(path)).hexdigest() != oid.removesuffix(".dir"):
        odb.fs.rm(path)


def _oid_in(text: str) -> str:
    found = re.search(r"[0-9a-f]{32}(?:\.dir)?", text)
    return found.group(0) if found else ""


def _comparable(url: Any) -> str:
    text = str(url or "")
    return text if "://" in text or not text else os.path.abspath(text)


def _open(root: Path, warn: Callable[[str], None]) -> Any:
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    top = _git_top(root)
    try:
        if (root / ".dvc").is_dir():
            if top is None and not _no_scm(root):
                # set up inside git, then copied out of it: DVC would refuse; use it without git
                warn(f"{root} is not inside a git repository: DVC runs without git here; "
                     "`git init` (then commit mlproject.lock and .mlmake-artifacts/) to version what was built")
                return Repo(str(root), config={"core": {"no_scm": True}})
            return Repo(str(root))
        with _quiet():  # DVC's own "Initialized DVC repository"
            if top is None:
                return Repo.init(str(root), no_scm=True)
            return Repo.init(str(root), subdir=top != root.resolve())
    except DvcException as exc:
        raise RemoteError(f"cannot set up DVC in {root}: {exc}") from None


def _no_scm(root: Path) -> bool:
    """Whether the project's DVC config says it runs without git."""
    for name in ("config", "config.local"):
        with contextlib.suppress(OSError):
            text = (root / ".dvc" / name).read_text(encoding="utf-8")
            if re.search(r"(?mi)^\s*no_scm\s*=\s*(true|1|yes)\s*$", text):
                return True
    return False


def _git_top(root: Path) -> Path | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.stdout.strip()).resolve() if out.returncode == 0 and out.stdout.strip() else None


def pipeline_status(root: Path) -> dict[str, Any]:
    """`dvc status` of the dvc.yaml pipeline in ROOT: each stage that is not up to date, with
    what changed ({} when everything is). Reads only: nothing is initialised or written."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    if not (root / ".dvc").is_dir():
        raise RemoteError(f"no DVC repository in {root} (no .dvc folder)")
    try:
        with _quiet(logging.CRITICAL), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()), Repo(str(root), uninitialized=False) as repo:
            found = dict(repo.status())
    except (DvcException, OSError) as exc:
        raise RemoteError(f"dvc status failed in {root}: {exc}") from None
    return {_stage_name(root, key): value for key, value in found.items()}


def _stage_name(root: Path, key: str) -> str:
    """DVC addresses a stage from the working directory (`sub/dvc.yaml:train`); ROOT's own by name."""
    file, sep, name = key.rpartition(":")
    if sep and os.path.abspath(file) == os.path.abspath(root / "dvc.yaml"):
        return name
    return key
