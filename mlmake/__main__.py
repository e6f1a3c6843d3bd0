"""The `mlmake` command (and `python -m mlmake`): a repeated `plan` whose files did not
change is answered from its record (see mlmake.replay); everything else goes to the CLI.

When the command is done the process ends at once (os._exit after flushing the standard
streams), as mypy does: everything mlmake writes is closed by then (the lock, the run records,
the DVC repository), and tearing down polars, xgboost and dvc costs a build a fifth of a
second that nobody waits for. While a thread or a worker process is still alive (a pool
stopped by Ctrl-C), the normal exit runs instead, so that they are joined or stopped."""

from __future__ import annotations

import contextlib
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
    from mlmake import replay

    # shell completion (click's _MLMAKE_COMPLETE) answers with candidates, not a plan
    off = os.environ.get("MLMAKE_NO_REPLAY") or os.environ.get("_MLMAKE_COMPLETE")
    folder = None if off else replay.project_dir(argv)
    recorder = None
    if folder is not None and os.path.isdir(folder):
        root = os.path.realpath(folder)
        key = replay.make_key(argv)
        code = replay.answer(root, key, sys.stdout, sys.stderr)
        if code is not None:
            return code
        recorder = replay.Recorder(root, key).start()
    from mlmake.cli import main as cli_main

    code = 1
    try:
        cli_main(list(argv))
        code = 0
    except SystemExit as exc:
        code = replay.exit_code(exc)
        if isinstance(exc.code, str):
            sys.stderr.write(exc.code + "\n")
    finally:
        if recorder is not None:
            recorder.finish(code)
    return code


def _end(code: int) -> None:
    if _others_running():
        sys.exit(code)  # Python's exit joins them (and stops a worker pool left by Ctrl-C)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can be said
            stream.flush()
    os._exit(code)


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
