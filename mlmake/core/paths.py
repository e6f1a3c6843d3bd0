"""Paths from the project file: where they really lead (through symlinks), whether they stay
inside the project, and which paths no output may be or contain (the project's own files,
mlmake's and the tools' state, inputs and source code)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

PROJECT_FILE = "mlproject.yaml"
LOCK_FILE = "mlproject.lock"
POINTERS = ".mlmake-artifacts"
STATE_DIRS = (".git", ".dvc", ".mlmake")
# what mlmake and git need to stay as they are, whatever the file declares
PROTECTED = (PROJECT_FILE, LOCK_FILE, POINTERS, *STATE_DIRS)


@functools.lru_cache(maxsize=65536)  # a large file names the same scripts and folders over and over
def syntax_problem(path: str) -> str:
    """Why a path is not allowed as written (absolute, leaving, the whole project), or ''."""
    if "\0" in path:
        return f"the path {path!r} holds a NUL character"
    if os.path.isabs(path) or path.startswith("~"):
        return f"the path '{path}' must be relative to the project"
    norm = os.path.normpath(path)
    if norm == ".":
        return f"the path '{path}' is the whole project; name a file or folder inside it"
    if norm == ".." or norm.startswith(".." + os.sep):
        return f"the path '{path}' leaves the project"
    if norm.split(os.sep)[0] in STATE_DIRS:
        return f"the path '{path}' is inside {norm.split(os.sep)[0]}/, which mlmake manages"
    return ""


def real(root: Path | str, path: str) -> str:
    """The absolute path `path` leads to, every symlink followed (it need not exist)."""
    return os.path.realpath(os.path.join(root, path))


def is_within(inner: str, outer: str) -> bool:
    """Whether the absolute path `inner` is `outer` or lies below it."""
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


class Resolver:
    """Where the project's relative paths lead, symlinks followed: one lstat per path and folder
    (a 10 000-node file names thousands of paths in a few folders)."""

    def __init__(self, root: Path | str) -> None:
        self.root = str(root)
        self.top = os.path.realpath(root)
        self.memo: dict[str, str] = {"": self.top, ".": self.top}

    def real(self, path: str) -> str:
        found = self.memo.get(path)
        if found is not None:
            return found
        if ".." in path.split("/") or os.path.isabs(path):
            found = real(self.root, path)  # `link/..` is not `.`: let the OS walk it
        else:
            parent, name = os.path.split(os.path.normpath(path))
            full = os.path.join(self.real(parent), name)
            found = os.path.realpath(full) if os.path.islink(full) else full
        self.memo[path] = found
        return found

    def escape_problem(self, path: str) -> str:
        """'' when `path` leads inside the project; otherwise where its symlinks lead."""
        target = self.real(path)
        if is_within(target, self.top):
            return ""
        return f"the path '{path}' leads outside the project through a symlink (to {target})"


class Protected:
    """Paths no output may be or contain, by where they lead: PROTECTED and `named` (path → what)."""

    def __init__(self, resolver: Resolver, named: dict[str, str]) -> None:
        self.resolver = resolver
        always = {p: _WHAT.get(p, "state that mlmake and its tools manage") for p in PROTECTED}
        # every folder holding a protected path (up to the project) → the first such path
        self.under: dict[str, tuple[str, str]] = {}
        for path, what in {**always, **named}.items():
            target = resolver.real(path)
            while is_within(target, resolver.top) and target != resolver.top:
                self.under.setdefault(target, (path, what))
                target = os.path.dirname(target)
        self.pointers = resolver.real(POINTERS)

    def output_problem(self, out: str, own: dict[str, str]) -> str:
        """Why clearing and writing the output `out` could lose something, or ''."""
        problem = syntax_problem(out) or self.resolver.escape_problem(out)
        if problem:
            return problem
        target = self.resolver.real(out)
        hit = self.under.get(target) or next(((p, w) for p, w in own.items()
                                              if is_within(self.resolver.real(p), target)), None)
        if hit:
            path, what = hit
            verb = "is" if self.resolver.real(path) == target else "contains"
            shown = "" if os.path.normpath(path) == os.path.normpath(out) else f" ('{path}')"
            return f"the output '{out}' {verb} {what}{shown}: building would delete it"
        if is_within(target, self.pointers):
            return f"the output '{out}' is inside '{POINTERS}', which mlmake manages"
        return ""


_WHAT = {PROJECT_FILE: "the project file", LOCK_FILE: "the project's lock", POINTERS: "mlmake's artifact pointers"}


def writable_output(root: Path | str, out: str) -> str:
    """At build time, just before an output is written: '' when it is still inside the project
    (a symlink made after validate could lead it out), else why not."""
    problem = syntax_problem(out)
    if problem:
        return problem
    # the last component itself is replaced, not followed; its folder must stay inside
    parent = os.path.dirname(os.path.normpath(out)) or "."
    top = os.path.realpath(root)
    if not is_within(os.path.realpath(os.path.join(root, parent)), top):
        return f"the output '{out}' leads outside the project through a symlink; not written"
    # the output's own name is replaced, not followed: a link there is removed, not its target
    target = os.path.join(os.path.realpath(os.path.join(root, parent)), os.path.basename(os.path.normpath(out)))
    if is_within(top, target) or any(is_within(real(root, p), target) for p in PROTECTED):
        return f"the output '{out}' would replace the project's own files; not written"
    return ""


def is_address(text: str, root: Path | str | None = None) -> bool:
    """Whether a dep names a node (`models.churn`) rather than a file (`models.py`)."""
    from mlmake.core.registry import registry

    section, dot, name = text.partition(".")
    if not dot or section not in registry().sections() or "/" in name or text.endswith(".py"):
        return False
    return root is None or not os.path.exists(os.path.join(root, text))
