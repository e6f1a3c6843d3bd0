"""The project-local Python files a hook or a script runs: itself and the modules it imports,
transitively, found by reading the source (ast), never by running it.

Every `import x.y`, `from x import y` and relative import counts, at any depth of the file
(inside a function or an `if` too), since whether it runs is not known without running it.
A name is looked up the way Python would find it with the entry's folder and the project
root on sys.path: `x/y.py` or `x/y/__init__.py` (and the `__init__.py` of each package on
the way, which importing runs). A name found in neither is the standard library or an
installed package: those enter a fingerprint as library versions, not as files. Imports
built at run time (`importlib.import_module(name)`) cannot be seen: declare them in `deps:`.
"""

from __future__ import annotations

import ast
import contextlib
import os
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mlmake.core import memo

PYTHONS = ("python", "python3")
_WITH_VALUE = ("-W", "-X", "--check-hash-based-pycs")  # interpreter options that take the next argument


class Source(Protocol):
    """What the analysis reads: project-relative paths with '/'."""

    def read(self, rel: str) -> bytes | None:
        """The bytes of a file; None when it is not a file."""

    def is_dir(self, rel: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Module:
    """An imported name: dotted, absolute (folder None) or relative to a package folder."""

    name: str
    folder: str | None = None


class Workspace:
    """The project's files on disk, each read at most once, each entry followed once: one
    Workspace sees one moment of the project (a graph is built from one)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache: dict[str, bytes | None] = {}
        self.followed: dict[tuple[str, ...], tuple[str, ...]] = {}

    def read(self, rel: str) -> bytes | None:
        if rel not in self.cache:
            memo.note(os.path.join(self.root, rel))  # a kept plan depends on it, present or not
            try:
                with open(os.path.join(self.root, rel), "rb") as fh:
                    self.cache[rel] = fh.read()
            except OSError:  # absent, a folder, unreadable
                self.cache[rel] = None
        return self.cache[rel]

    def is_dir(self, rel: str) -> bool:
        memo.note(os.path.join(self.root, rel))
        return os.path.isdir(os.path.join(self.root, rel))

    def python_files(self, entry: str) -> tuple[str, ...]:
        """python_files(self, entry), remembered."""
        if (entry,) not in self.followed:
            self.followed[(entry,)] = python_files(self, entry)
        return self.followed[(entry,)]

    def script_files(self, argv: Iterable[str]) -> tuple[str, ...]:
        """script_files(self, argv), remembered."""
        key = ("", *map(str, argv))
        if key not in self.followed:
            self.followed[key] = script_files(self, key[1:])
        return self.followed[key]


_session: Workspace | None = None


@contextlib.contextmanager
def session(root: Path) -> Iterator[Workspace]:
    """While it lasts, workspace(root) is one shared Workspace: the nodes of one graph that run
    the same code read and parse it once."""
    global _session
    previous, _session = _session, Workspace(root)
    try:
        yield _session
    finally:
        _session = previous


def workspace(root: Path) -> Workspace:
    """The session's Workspace for root, else a new one."""
    return _session if _session is not None and _session.root == root else Workspace(root)


def python_files(source: Source, entry: str) -> tuple[str, ...]:
    """The entry file and every project-local module it imports, transitively, sorted."""
    entry = posixpath.normpath(entry)
    search = tuple(dict.fromkeys((posixpath.dirname(entry), "")))  # sys.path: the entry's folder, the root
    found: set[str] = {entry}
    todo = [entry]
    while todo:
        path = todo.pop()
        text = source.read(path)
        if text is None:
            continue
        for module in imports(text, path):
            for candidate in module_files(source, module, search):
                if candidate not in found:
                    found.add(candidate)
                    todo.append(candidate)
    return tuple(sorted(found))


def script_files(source: Source, argv: Iterable[str]) -> tuple[str, ...]:
    """What `python SCRIPT …` or `python -m MODULE …` runs from the project (the script or
    module and what it imports), else ()."""
    args = [str(a) for a in argv]
    if not args or posixpath.basename(args[0]) not in PYTHONS:
        return ()
    target = _python_target(args[1:])
    if target is None:
        return ()
    kind, name = target
    if kind == "script":
        path = posixpath.normpath(name)
        if path == ".." or path.startswith("../") or posixpath.isabs(path) or source.read(path) is None:
            return ()
        return python_files(source, path)
    files = module_files(source, Module(name), ("",))
    main = module_files(source, Module(f"{name}.__main__"), ("",)) if files and files[-1].endswith("__init__.py") \
        else []
    runs = main[-1:] or files[-1:]
    return tuple(sorted(set(files) | {f for r in runs for f in python_files(source, r)}))


def module_files(source: Source, module: Module, search: Iterable[str]) -> list[str]:
    """The files that importing a module runs, from the first search folder that has it (its
    own package folder for a relative one); [] when none has it: a library."""
    folders = [module.folder] if module.folder is not None else search
    parts = module.name.split(".") if module.name else []
    for folder in folders:
        files = _in_folder(source, folder, parts)
        if files:
            return files
    return []


def imports(text: bytes, path: str) -> list[Module]:
    """The modules a file imports, anywhere in it."""
    try:
        tree = ast.parse(text, filename=path)
    except (SyntaxError, ValueError):
        return []  # running it will say what is wrong; its own bytes are still a dependency
    found: list[Module] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [Module(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found += _from_import(node, path)
    return found


def _from_import(node: ast.ImportFrom, path: str) -> list[Module]:
    """`from x import y`: x, and x.y in case y is a submodule (a name that is not one is looked
    up in vain); relative to the file's package folder when dotted."""
    base = node.module or ""
    names = [base] if base else []
    names += [f"{base}.{a.name}" if base else a.name for a in node.names if a.name != "*"]
    if node.level == 0:
        return [Module(n) for n in names]
    folder = posixpath.dirname(path)
    for _ in range(node.level - 1):
        folder = posixpath.dirname(folder)
    return [Module(n, folder) for n in names]


def _in_folder(source: Source, folder: str, parts: list[str]) -> list[str]:
    """The `__init__.py` of each package on the way and the module's file, or [] when the
    module is not under folder."""
    files: list[str] = []
    here = folder
    for i, part in enumerate(parts):
        if not part.isidentifier():
            return []
        here = posixpath.join(here, part) if here else part
        last = i == len(parts) - 1
        if source.read(posixpath.join(here, "__init__.py")) is not None:
            files.append(posixpath.join(here, "__init__.py"))
        elif last and source.read(here + ".py") is not None:
            files.append(here + ".py")
        elif last or not source.is_dir(here):
            return []
    return files


def _python_target(args: list[str]) -> tuple[str, str] | None:
    """("script", path) or ("module", name) from the interpreter's arguments; None for -c."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-m":
            return ("module", args[i + 1]) if i + 1 < len(args) else None
        if arg.startswith("-m"):
            return "module", arg[2:]
        if arg.startswith("-c") or arg == "-":
            return None
        if arg in _WITH_VALUE:
            i += 2
            continue
        if not arg.startswith("-"):
            return "script", arg
        i += 1
    return None
