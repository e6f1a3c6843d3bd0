"""The `mlmake` command (and `python -m mlmake`): a repeated `plan` whose files did not
change is answered from its record (see mlmake.replay); everything else goes to the CLI."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    from mlmake import replay

    args = sys.argv[1:] if argv is None else list(argv)
    folder = None if os.environ.get("MLMAKE_NO_REPLAY") else replay.project_dir(args)
    recorder = None
    if folder is not None and os.path.isdir(folder):
        root = os.path.realpath(folder)
        key = replay.make_key(args)
        code = replay.answer(root, key, sys.stdout, sys.stderr)
        if code is not None:
            sys.exit(code)
        recorder = replay.Recorder(root, key).start()
    from mlmake.cli import main as cli_main

    if recorder is None:
        cli_main(args)
        return
    code = 1
    try:
        cli_main(args)
        code = 0
    except SystemExit as exc:
        code = replay.exit_code(exc)
        raise
    finally:
        recorder.finish(code)


if __name__ == "__main__":
    main()
