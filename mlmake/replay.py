"""A repeated `mlmake plan` answered from the record of the last one, the way make and
ninja say "nothing to do" from file metadata alone.

A plan is a function of its command line, a few environment variables and the files it
reads: the spec, the lock, inputs, outputs, DVC pointers, the run cache, mlmake's own code
and the installed libraries' dist-info names. While a plan runs, every path it opens, stats
or lists is noted (an audit hook, and a wrapper on os.stat and os.lstat), each with its
signature at first use: type, mode, inode, device, size, mtime and ctime in nanoseconds for
a file; the entry names for a listed folder; the target for a link. When the plan ends, its
output and exit code are kept with those signatures in .mlmake/cache/replay/. The next plan
with the same command line and environment takes the signatures again, and when every one
is the same it writes the kept output and exits, without loading the rest of mlmake: a
no-op plan costs the interpreter's start and one stat per path.

Nothing is kept (the next plan computes again) when the plan
- wrote anywhere but .mlmake/cache/, started a process or opened a database;
- saw a file change while it ran (its signature at the end differs from the first one);
- read a file modified less than 2 s before it started: such a file can change again within
  the same tick of a coarse file-system clock with the same size (git's "racily clean");
- failed (exit 1), or was `--base` (which reads git history), `--help` or not a plan.
Reads of .mlmake/cache/ are not noted: those caches are keyed by what they were made from.
MLMAKE_NO_REPLAY=1 turns replay off. Stdlib only: this module runs before anything else.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any, TextIO

from mlmake import __version__

FORMAT = 1
FOLDER = os.path.join(".mlmake", "cache", "replay")
KEEP = 16  # records per project (one per command line and environment), newest kept
RACY_NS = 2_000_000_000
# what the output can depend on besides argv and the files: rich's and click's terminal
# settings, the interpreter's encoding, and sys.path (where library versions are looked up)
ENVIRONMENT = ("NO_COLOR", "FORCE_COLOR", "TERM", "COLORTERM", "COLUMNS", "LINES", "TTY_COMPATIBLE",
               "TTY_INTERACTIVE", "JUPYTER_COLUMNS", "JUPYTER_LINES", "CLICOLOR", "CLICOLOR_FORCE",
               "PYTHONPATH", "PYTHONHOME", "PYTHONIOENCODING", "PYTHONUTF8", "LANG", "LC_ALL", "LC_CTYPE",
               "XDG_CACHE_HOME", "HOME")  # where the default remote is, whose objects plan stats
_WRITES = ("os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.truncate", "os.chmod", "os.chown", "os.utime",
           "os.link", "os.symlink", "shutil.rmtree", "shutil.copyfile", "shutil.copytree")
_SPOILERS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
             "sqlite3.connect", "socket.connect", "socket.bind")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

_real_stat, _real_lstat = os.stat, os.lstat
_active: Recorder | None = None
_hooked = False
_from_cache: Callable[[str], str] | None = None


def project_dir(argv: list[str]) -> str | None:
    """The -C folder (or '.') of a `plan` command line that may be answered from a record."""
    directory, i = ".", 0
    while i < len(argv) and argv[i].startswith("-C"):
        if argv[i] == "-C":
            if i + 1 >= len(argv):
                return None
            directory, i = argv[i + 1], i + 2
        else:
            directory, i = argv[i][2:], i + 1
    rest = argv[i:]
    if not rest or rest[0] != "plan":
        return None
    if any(a in ("-h", "--help", "--base") or a.startswith("--base=") for a in rest[1:]):
        return None
    return directory


def make_key(argv: list[str]) -> dict[str, Any]:
    """Everything besides the files that the output depends on."""
    env = {name: os.environ.get(name) for name in ENVIRONMENT}
    env |= {k: v for k, v in os.environ.items() if k.startswith("MLMAKE_")}
    return {"format": FORMAT, "mlmake": [__version__, os.path.dirname(os.path.abspath(__file__))],
            "python": [sys.executable, *sys.path], "cwd": os.getcwd(), "argv": list(argv),
            "tty": [_isatty(sys.stdout), _isatty(sys.stderr)], "env": env}


def record_path(root: str, key: dict[str, Any]) -> str:
    name = f"{zlib.crc32(json.dumps(key, sort_keys=True).encode()):08x}.json"
    return os.path.join(root, FOLDER, name)


def answer(root: str, key: dict[str, Any], out: TextIO, err: TextIO) -> int | None:
    """Write the kept output and return the kept exit code when nothing the record depends
    on changed; None (writing nothing) otherwise."""
    try:
        with open(record_path(root, key), encoding="utf-8") as f:
            record = json.load(f)
        if record["key"] != key:
            return None
        if any(signature(path) != sig for path, sig in record["paths"]):
            return None
        if any(listing(path) != names for path, names in record["listings"]):
            return None
        code, kept_out, kept_err = int(record["code"]), str(record["out"]), str(record["err"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        out.write(kept_out)
        err.write(kept_err)
        out.flush()
        err.flush()
    except OSError as exc:  # a full disk, a closed pipe
        with contextlib.suppress(OSError, ValueError):
            err.write(f"error: cannot write the plan: {exc}\n")
        return 1
    return code


def answerable() -> None:
    """Called by a command whose output depends only on what the recorder sees."""
    if _active is not None:
        _active.answerable = True


def signature(path: str) -> list[Any]:
    """What must stay the same for a read of path to give the same result: a link is its
    target's name and what stat finds through it (a loop reads as missing, not a recursion)."""
    try:
        st = _real_lstat(path)
    except OSError as exc:
        return ["missing", exc.errno]
    if stat.S_ISLNK(st.st_mode):
        try:
            target: str | None = os.readlink(path)
        except OSError:
            target = None
        try:
            followed = _stat_signature(_real_stat(path))
        except OSError as exc:
            followed = ["missing", exc.errno]
        return ["link", target, followed]
    return _stat_signature(st)


def _stat_signature(st: os.stat_result) -> list[Any]:
    mode = stat.S_IFMT(st.st_mode)
    if mode == stat.S_IFREG:
        return ["file", st.st_mode, st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    if mode == stat.S_IFDIR:
        return ["dir"]  # what is in it is noted by the paths read and the listings taken
    return ["other", st.st_mode]


def _modified_ns(sig: list[Any]) -> int:
    """The mtime of a file signature, or of the file a link signature leads to; 0 otherwise."""
    if sig[0] == "link":
        return _modified_ns(sig[2])
    return int(sig[5]) if sig[0] == "file" else 0


def listing(path: str) -> list[Any] | None:
    """A folder's entry names, with its mtime and ctime: an entry removed and put back
    between this listing and the program's own still shows."""
    try:
        st = _real_stat(path)
        return [sorted(os.listdir(path)), st.st_mtime_ns, st.st_ctime_ns]
    except OSError:
        return None


class _Tee:
    """A text stream that keeps a copy of what is written through it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        written = self._stream.write(text)  # first: click probes streams with write(b"")
        self.parts.append(text)
        return written

    def __getattr__(self, name: str) -> Any:
        if name == "buffer":  # bytes written to the buffer would bypass the copy
            raise AttributeError(name)
        return getattr(self._stream, name)


class Recorder:
    """Notes what one plan reads; keeps its output when it may answer the next one."""

    def __init__(self, root: str, key: dict[str, Any]) -> None:
        self.root, self.key = root, key
        self.private = os.path.join(root, ".mlmake")
        self.caches = os.path.join(self.private, "cache") + os.sep
        self.paths: dict[str, list[Any]] = {}
        self.listings: dict[str, list[Any] | None] = {}
        self.spoiled = ""
        self.answerable = False
        self.started_ns = 0
        self._streams: tuple[TextIO, TextIO] | None = None
        self._tees: tuple[_Tee, _Tee] | None = None

    def start(self) -> Recorder:
        global _active, _hooked, _from_cache
        if not _hooked:
            from importlib.util import source_from_cache

            _from_cache = source_from_cache  # imported now: the hook must not import
            sys.addaudithook(_audit)
            _hooked = True
        self.started_ns = time.time_ns()
        self._streams = (sys.stdout, sys.stderr)
        self._tees = (_Tee(sys.stdout), _Tee(sys.stderr))
        sys.stdout, sys.stderr = self._tees
        os.stat, os.lstat = _noting(_real_stat, self), _noting(_real_lstat, self)
        _active = self
        return self

    def stop(self) -> None:
        global _active
        _active = None
        os.stat, os.lstat = _real_stat, _real_lstat
        if self._streams is not None:
            sys.stdout, sys.stderr = self._streams
            self._streams = None

    def finish(self, code: int) -> None:
        """Stop, and keep the record when it can answer the next identical plan."""
        self.stop()
        if self.spoiled or not self.answerable or code not in (0, 2) or self._tees is None:
            return
        self._note_package()
        for path, first in self.paths.items():
            if signature(path) != first:
                return  # changed while the plan ran
            if _modified_ns(first) >= self.started_ns - RACY_NS:
                return  # racily clean
        if any(listing(path) != names for path, names in self.listings.items()):
            return
        out, err = ("".join(t.parts) for t in self._tees)
        self._save({"key": self.key, "code": code, "out": out, "err": err,
                    "paths": sorted(self.paths.items()), "listings": sorted(self.listings.items())})

    def note(self, path: Any) -> None:
        full = _absolute(_source_of(path))
        if full is None or full in self.paths or _under(full, self.caches) or _is_bytecode(full):
            return
        self.paths[full] = signature(full)

    def note_listing(self, path: Any) -> None:
        full = _absolute(path if path is not None else ".")
        if full is not None and full not in self.listings and not _under(full, self.caches):
            self.listings[full] = None  # listing() lists: its own audit event must not recurse
            self.listings[full] = listing(full)

    def note_write(self, path: Any, event: str) -> None:
        full = _absolute(path)
        if full is None:
            return  # a file descriptor: its opening was seen with its path
        # the caches' folder is made on first use, .mlmake/ with it; Python writes bytecode
        # (under PYTHONPYCACHEPREFIX, making the folders that mirror the sources)
        prefix = sys.pycache_prefix
        if (_under(full, self.caches) or full == self.private or _is_bytecode(full)
                or (event == "os.mkdir" and prefix and _under(full, os.path.join(prefix, "")))):
            return
        self.spoiled = f"wrote {full}"

    def _note_package(self) -> None:
        """mlmake's own modules, the ones imported before recording began included."""
        package = os.path.dirname(os.path.abspath(__file__))
        for folder, dirs, files in os.walk(package):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    self.note(os.path.join(folder, name))

    def _save(self, record: dict[str, Any]) -> None:
        path = record_path(self.root, self.key)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(record, f, separators=(",", ":"))
            os.replace(tmp, path)
            _prune(os.path.dirname(path))
        except OSError:
            pass  # a record that cannot be kept only costs speed


def _prune(folder: str) -> None:
    kept = sorted((e for e in os.scandir(folder) if e.name.endswith(".json")),
                  key=lambda e: e.stat().st_mtime_ns, reverse=True)
    for entry in kept[KEEP:]:
        with contextlib.suppress(OSError):
            os.remove(entry.path)


def _noting(real: Callable[..., os.stat_result], recorder: Recorder) -> Callable[..., os.stat_result]:
    def noted(path: Any, *args: Any, dir_fd: int | None = None, **kwargs: Any) -> os.stat_result:
        if dir_fd is None:
            recorder.note(path)
        return real(path, *args, dir_fd=dir_fd, **kwargs)

    return noted


def _audit(event: str, args: tuple[Any, ...]) -> None:
    recorder = _active
    if recorder is None:
        return
    try:
        _note_event(recorder, event, args)
    except Exception as exc:  # noqa: BLE001 - never fail the operation being audited
        recorder.spoiled = f"{event}: {exc!r}"


def _note_event(recorder: Recorder, event: str, args: tuple[Any, ...]) -> None:
    if event == "open":
        path, mode, flags = args
        writing = bool(flags & _WRITE_FLAGS) if mode is None else any(c in str(mode) for c in "wax+")
        if writing:
            recorder.note_write(path, event)
        else:
            recorder.note(path)
    elif event in ("os.listdir", "os.scandir"):
        recorder.note_listing(args[0] if args else None)
    elif event in _WRITES:
        recorder.note_write(args[0] if args else None, event)
    elif event.startswith(_SPOILERS):
        recorder.spoiled = event


def _source_of(path: Any) -> Any:
    """A module's source for its compiled file (in __pycache__ or under PYTHONPYCACHEPREFIX):
    a stale .pyc is replaced only when the module is imported again."""
    if isinstance(path, (str, os.PathLike)) and os.fspath(path).endswith(".pyc") and _from_cache is not None:
        try:
            return _from_cache(os.fspath(path))
        except ValueError:
            pass
    return path


def _is_bytecode(path: str) -> bool:
    """A compiled module (or its temporary file while written) or a __pycache__ folder."""
    name = os.path.basename(path)
    stem, dot_pyc, suffix = name.rpartition(".pyc.")  # importlib writes NAME.pyc.ID, then renames it
    return name == "__pycache__" or name.endswith(".pyc") or bool(stem and dot_pyc and suffix.isdigit())


def _absolute(path: Any) -> str | None:
    """The path as given, made absolute but not normalized: `link/..` is not the folder the
    link is in, and the record must stat what the program reads."""
    if isinstance(path, int):
        return None
    try:
        text = os.fsdecode(path)
    except TypeError:
        return None
    return text if os.path.isabs(text) else os.path.join(os.getcwd(), text)


def _under(path: str, folder: str) -> bool:
    """path is folder (given with a trailing separator) or inside it."""
    return (path + os.sep).startswith(folder)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def exit_code(exc: SystemExit) -> int:
    """The status a SystemExit ends the process with."""
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1
