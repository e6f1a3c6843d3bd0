"""Locations and the error family. Imports nothing from mlmake."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Span:
    """A place in a source file; line and col are 1-based."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        # line 0 marks a place outside any file, such as a -P override
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One user-facing problem: where, which key, what, and how to fix it."""

    span: Span | None
    path: str
    message: str
    hint: str = ""
    source_line: str = field(default="", compare=False)

    def render(self) -> str:
        where = f"{self.span}: " if self.span else ""
        key = f"{self.path}: " if self.path else ""
        lines = [f"{where}{key}{self.message}"]
        if self.span and self.span.line and self.source_line:
            lines.append(f"  {self.source_line.rstrip()}")
            lines.append("  " + " " * (self.span.col - 1) + "^")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class MlmakeError(Exception):
    """A user's mistake or an environment problem: reported without a traceback."""

    exit_code = 1

    def render(self) -> str:
        return f"error: {self}"


class SpecError(MlmakeError):
    """The project file has one or more problems, all reported at once."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__(f"{len(diagnostics)} error(s) in the project file")

    def render(self) -> str:
        body = "\n".join(d.render() for d in self.diagnostics)
        n = len(self.diagnostics)
        return f"{body}\n{n} error{'s' if n != 1 else ''} found"


class BuildError(MlmakeError):
    """One or more nodes failed while building."""


class NodeError(MlmakeError):
    """A node's recipe failed for a reason the user can act on (contract, gate, command)."""

    def __init__(self, message: str, metrics: dict[str, float] | None = None) -> None:
        super().__init__(message)
        self.metrics = metrics or {}  # what the recipe measured before it failed (a failed gate's)


class LockBusyError(MlmakeError):
    """Another mlmake build holds the project's lock."""


class Interrupted(MlmakeError):
    """The user pressed Ctrl-C; what finished is kept."""

    exit_code = 130


def did_you_mean(word: str, known: Iterable[object]) -> str:
    """A hint naming the closest known word, or ''."""
    close = difflib.get_close_matches(word, [str(k) for k in known], n=1)
    return f"did you mean '{close[0]}'?" if close else ""
