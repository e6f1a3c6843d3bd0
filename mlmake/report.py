"""All terminal output goes through here: rich on a terminal, plain text when piped.
The only module that imports rich."""

from __future__ import annotations

import sys
from typing import Any, TextIO


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _console(stream: TextIO) -> Any:
    from rich.console import Console

    return Console(file=stream, highlight=False, soft_wrap=True)


def out(text: str, style: str = "") -> None:
    """A line for the user on stdout."""
    _write(sys.stdout, text, style)


def err(text: str, style: str = "") -> None:
    """A line for the user on stderr."""
    _write(sys.stderr, text, style)


def _write(stream: TextIO, text: str, style: str) -> None:
    if style and is_terminal(stream):
        from rich.text import Text

        _console(stream).print(Text(text, style=style))
    else:
        stream.write(text + "\n")
        stream.flush()
