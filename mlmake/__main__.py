"""The `mlmake` command (and `python -m mlmake`): a repeated `plan` whose inputs did not
change is answered from the last plan the state model kept (see mlmake.core.memo), before the
rest of mlmake is imported; everything else goes to the CLI.

When the command is done the process ends at once (os._exit after flushing the standard
streams), as mypy does: everything mlmake writes is closed by then (the lock, the run records,
the DVC repository), and tearing down polars, xgboost and dvc costs a build a fifth of a
second that nobody waits for. While a thread or a worker process is still alive (a pool
stopped by Ctrl-C), the normal exit runs instead, so that they are joined or stopped."""

from __future__ import annotations

import os
import sys


def main() -> None:
    """The console script: run the command line, then end the process."""
    try:
        code = run(sys.argv[1:])
    except BrokenPipeError:  # a kept plan answered into a closed pipe (`mlmake plan | head -1`)
        from mlmake.cli import stop_quietly

        stop_quietly()  # as the CLI does for a command's own output
    _end(code)


def run(argv: list[str]) -> int:
    """One command line, answered or run; its exit status."""
    from mlmake.core import memo

    folder = memo.project_dir(argv)
    if folder is not None:
        code = memo.answer(folder, argv, sys.stdout)
        if code is not None:
            return code
    memo.begin(argv)
    from mlmake.cli import main as cli_main

    try:
        cli_main(list(argv))
    except SystemExit as exc:
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
        return exit_code(exc)
    finally:
        memo.begin(None)
    return 0


def exit_code(exc: SystemExit) -> int:
    """The process status a SystemExit stands for."""
    if exc.code is None:
        return 0
    return exc.code if isinstance(exc.code, int) else 1


CLOSED_PIPE = 141  # 128 + SIGPIPE, as the CLI reports a reader that went away


def _end(code: int) -> None:
    from mlmake.core.terminal import is_closed

    # Python reports no error when a write to a pipe is cut short by its reader leaving (the
    # kernel takes part of it, then the rest is dropped): ask the pipe itself
    if code == 0 and is_closed(sys.stdout):
        code = CLOSED_PIPE
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # the reader went before the last of the output: it was cut short
            code = code or CLOSED_PIPE
            _discard(stream)
        except (OSError, ValueError):  # nothing more can be said
            _discard(stream)
    if _others_running():
        sys.exit(code)  # Python's exit joins them (and stops a worker pool left by Ctrl-C)
    os._exit(code)


def _discard(stream: object) -> None:
    """Point a stream nobody reads at the null device, so no later flush fails on it."""
    import contextlib

    with contextlib.suppress(AttributeError, OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())  # type: ignore[attr-defined]
        os.close(null)


def _others_running() -> bool:
    """A thread or a child process that a normal exit would wait for or stop."""
    import threading

    main = threading.main_thread()
    if any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return True
    processes = sys.modules.get("multiprocessing")
    return bool(processes is not None and processes.active_children())


if __name__ == "__main__":
    main()
