"""The last plan, remembered the way ninja remembers its last build in its logs.

A computed `mlmake plan` knows what it depended on, because every read on its path goes
through mlmake's own seams: the hasher (each input file, folder and DVC pointer, absent or
not), the spec loader and the lock reader (mlproject.yaml, mlproject.lock), the run-cache
and pointer lookups, the library versions (the folders of sys.path) and mlmake's own code.
Each of those hands the paths to a `Seen`, with their stat keys (type and mode, size, inode,
device, mtime and ctime in nanoseconds). When the plan is done and plain text went to a
pipe or a file, `save` keeps its output and exit code with those keys in .mlmake/cache/plan/,
under the command line, the working folder, the environment and the interpreter.

The next `mlmake plan` with the same key stats those paths again (`answer`, which runs before
the rest of mlmake is imported) and, when every key is the same, prints the kept output.

Nothing is kept (the next plan is computed) when
- a path it depends on was modified less than 2 s before the plan began: a coarse
  file-system clock may show the next edit with the same mtime ("racily clean", as git
  says; an mtime put back by `cp -p` or `touch -r` still moves the ctime, which is kept);
- a path changed while the plan ran;
- the plan failed, warned, wrote to a terminal (styled output), or was a `--base` report
  (which reads git history);
- the command did not come through the `mlmake` entry point (no `begin`).
MLMAKE_NO_MEMO=1 turns it off. Stdlib only: `answer` runs before anything else is loaded."""

from __future__ import annotations

import json
import os
import sys
import time
import zlib

from mlmake import __version__
from mlmake.core.workdir import PLAN_MEMO, VERSIONS, write_cache

TYPE_CHECKING = False  # typing stays unloaded: a kept plan is answered before it
if TYPE_CHECKING:
    from typing import Any, TextIO

RACY_NS = 2_000_000_000
KEEP = 16  # kept plans per project (one per command line and environment), newest kept
# variables that differ from one shell to the next and that nothing in mlmake reads
_VOLATILE = ("_", "OLDPWD", "PWD", "SHLVL", "MLMAKE_NO_MEMO")

if TYPE_CHECKING:
    StatKey = list[int] | None


def stat_key(path: str, *, follow: bool = True) -> StatKey:
    """What tells a changed path apart without reading it; None when it is absent."""
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except (OSError, ValueError):
        return None
    return key_of(st)


def key_of(st: os.stat_result) -> list[int]:
    return [st.st_mode, st.st_size, st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns]


class Seen:
    """The paths one plan depended on, each with its stat key when first seen."""

    def __init__(self) -> None:
        self.paths: dict[str, StatKey] = {}
        self.links: dict[str, StatKey] = {}  # looked at without following a link

    def note(self, path: str | os.PathLike[str], key: StatKey | bool = True) -> None:
        """A path read, stat-ed or found absent (key True: stat it now)."""
        name = os.path.abspath(path)
        if name not in self.paths:
            self.paths[name] = stat_key(name) if key is True else (None if key is False else key)

    def note_link(self, path: str | os.PathLike[str], key: StatKey) -> None:
        self.links.setdefault(os.path.abspath(path), key)

    def update(self, other: Seen) -> None:
        for name, key in other.paths.items():
            self.paths.setdefault(name, key)
        for name, key in other.links.items():
            self.links.setdefault(name, key)


_started_ns: int | None = None
_key: dict[str, Any] | None = None  # taken when the command began, as `answer` takes it
_collecting: Seen | None = None


def collect(seen: Seen | None) -> None:
    """Paths given to `note` from now on go to seen (None: nowhere); a plan sets it while it loads."""
    global _collecting
    _collecting = seen


def note(path: str | os.PathLike[str]) -> None:
    """A read made outside the hasher (the import analysis of code files): noted, with its stat
    key, for the plan being computed, before it is read."""
    if _collecting is not None:
        _collecting.note(path)


def begin(argv: list[str] | None) -> None:
    """The entry point starts a command line whose plan may be kept (None: it ended)."""
    global _started_ns, _key
    _started_ns, _key = (time.time_ns(), make_key(argv)) if argv is not None else (None, None)


def project_dir(argv: list[str]) -> str | None:
    """The -C folder (or '.') of a `plan` command line that may be answered from a kept plan."""
    if os.environ.get("MLMAKE_NO_MEMO") or os.environ.get("_MLMAKE_COMPLETE"):
        return None
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


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the mlmake package


def make_key(argv: list[str]) -> dict[str, Any]:
    """Everything besides the files that a plan's output depends on."""
    env = {k: v for k, v in os.environ.items() if k not in _VOLATILE}
    return {"mlmake": [__version__, _PACKAGE],
            "python": [sys.executable, *sys.path], "cwd": os.getcwd(), "argv": list(argv), "env": env}


def record_path(root: str, key: dict[str, Any]) -> str:
    name = f"{zlib.crc32(json.dumps(key, sort_keys=True).encode()):08x}.json"
    return os.path.join(root, PLAN_MEMO, name)


def answer(directory: str, argv: list[str], out: TextIO) -> int | None:
    """Print the kept plan and return its exit code when nothing it depends on changed;
    None (printing nothing) otherwise."""
    if _is_terminal(out) or not os.path.isdir(directory):
        return None
    key = make_key(argv)
    try:
        with open(record_path(os.path.realpath(directory), key), encoding="utf-8") as f:
            kept = json.load(f)
        if kept["version"] != VERSIONS[PLAN_MEMO] or kept["key"] != key:
            return None
        if any(stat_key(p) != k for p, k in kept["paths"]) or \
                any(stat_key(p, follow=False) != k for p, k in kept["links"]):
            return None
        code, text = int(kept["code"]), str(kept["out"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no kept plan, or one this mlmake cannot read: the plan is computed
    out.write(text)
    out.flush()
    return code


def save(root: str, seen: Seen, code: int, text: str) -> bool:
    """Keep a computed plan for the next identical command line, when it can be trusted."""
    if _key is None or _started_ns is None or os.environ.get("MLMAKE_NO_MEMO"):
        return False
    _note_code(seen)
    if not _trusted(seen, _started_ns):
        return False
    key = _key
    body = {"version": VERSIONS[PLAN_MEMO], "key": key, "code": code, "out": text,
            "paths": sorted(seen.paths.items()), "links": sorted(seen.links.items())}
    path = record_path(root, key)
    _prune(os.path.dirname(path))
    return write_cache(path, json.dumps(body))


def _trusted(seen: Seen, started_ns: int) -> bool:
    """No path racily clean, none changed since it was seen."""
    for paths, follow in ((seen.paths, True), (seen.links, False)):
        for path, key in paths.items():
            if key is not None and key[4] > started_ns - RACY_NS:
                return False
            if stat_key(path, follow=follow) != key:
                return False
    return True


def _note_code(seen: Seen) -> None:
    """mlmake's own modules and the folders where library versions are looked up."""
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and file.startswith(_PACKAGE + os.sep):
            seen.note(file)
    for folder in sys.path:
        seen.note(folder or ".")


def _prune(folder: str) -> None:
    try:
        names = sorted(os.scandir(folder), key=lambda e: e.stat().st_mtime_ns)
    except OSError:
        return
    for entry in names[:-KEEP + 1] if len(names) >= KEEP else []:
        try:  # noqa: SIM105 - contextlib stays unloaded on the kept-plan path
            os.unlink(entry.path)
        except OSError:
            pass


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
