"""Paths from the project file: where they really lead (through symlinks), whether they stay
inside the project, and which paths no output may be or contain (the project's own files,
mlmake's and the tools' state, inputs and source code)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_FILE = "mlproject.yaml"
LOCK_FILE = "mlproject.lock"
POINTERS = ".mlmake-artifacts"
STATE_DIRS = (".git", ".dvc", ".mlmake")
# what mlmake and git need to stay as they are, whatever the file declares
PROTECTED = (PROJECT_FILE, LOCK_FILE, POINTERS, *STATE_DIRS)


def syntax_problem(path: str) -> str:
    """Why a path is not allowed as written (absolute, leaving, the whole project), or ''."""
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


def escape_problem(root: Path | str, path: str) -> str:
    """'' when `path` resolves inside the project; otherwise where its symlinks lead."""
    top = os.path.realpath(root)
    target = real(root, path)
    if is_within(target, top):
        return ""
    return f"the path '{path}' leads outside the project through a symlink (to {target})"


def output_problem(root: Path | str, out: str, protected: dict[str, str]) -> str:
    """Why writing (or clearing) the declared output `out` could lose something, or ''.

    `protected` maps a project-relative path to what it is ("an input of datasets.x");
    PROTECTED is always included. Paths are compared where their symlinks lead."""
    problem = syntax_problem(out) or escape_problem(root, out)
    if problem:
        return problem
    target = real(root, out)
    named = {p: "the project file" if p == PROJECT_FILE else "the project's lock" if p == LOCK_FILE
             else "mlmake's artifact pointers" if p == POINTERS else "state that mlmake and its tools manage"
             for p in PROTECTED}
    for path, what in {**named, **protected}.items():
        if is_within(real(root, path), target):
            same = real(root, path) == target
            shown = "" if os.path.normpath(path) == os.path.normpath(out) else f" ('{path}')"
            return f"the output '{out}' {'is' if same else 'contains'} {what}{shown}: building would delete it"
    return ""


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


NODE_SECTIONS = ("datasets", "features", "models", "steps", "deploy")


def is_address(text: str, root: Path | str | None = None) -> bool:
    """Whether a dep names a node (`models.churn`) rather than a file (`models.py`)."""
    section, dot, name = text.partition(".")
    if not dot or section not in NODE_SECTIONS or "/" in name or text.endswith(".py"):
        return False
    return root is None or not os.path.exists(os.path.join(root, text))
