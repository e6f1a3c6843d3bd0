"""The standard streams at their lowest level: is it a terminal, has its reader gone, and the
warnings any layer may write. Rich rendering lives in mlmake.outputs.report."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TextIO

_YELLOW, _RESET = "\x1b[33m", "\x1b[0m"
_ERR_LINES = [0]  # lines written to stderr by this process (a plan that warned is not kept)


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def is_closed(stream: TextIO) -> bool:
    """Whether the stream is a pipe whose reader has gone (POLLERR on Linux, POLLHUP on macOS)."""
    import select

    try:
        poller = select.poll()
        poller.register(stream.fileno(), 0)  # errors and hang-ups are reported whatever the mask
        events = poller.poll(0)
    except (AttributeError, OSError, ValueError):  # no poll (Windows) or no file descriptor
        return False
    return any(flags & (select.POLLERR | select.POLLHUP) for _, flags in events)


def discard(stream: TextIO) -> None:
    """Point the stream at the null device: nothing more goes to a closed pipe, not even the
    final flush at exit (which would print "Exception ignored … BrokenPipeError")."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)


def count_err_line() -> None:
    """Note one line written to stderr."""
    _ERR_LINES[0] += 1


def warnings_written() -> int:
    """How many lines went to stderr so far."""
    return _ERR_LINES[0]


def warn_line(message: str) -> None:
    """A warning on stderr (yellow on a terminal); dropped when nobody reads stderr any more."""
    count_err_line()
    text = f"warning: {message}"
    if is_terminal(sys.stderr):
        text = f"{_YELLOW}{text}{_RESET}"
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except BrokenPipeError:
        discard(sys.stderr)
