"""A param inside a string `cmd` is one argument, whatever it holds (spaces, quotes, `;`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

MakeProject = Callable[[dict[str, str | bytes]], Path]
RunCli = Callable[..., Result]
ARGS = "import json, sys\nopen('build/args.json', 'w').write(json.dumps(sys.argv[1:]))\n"
PROJECT = """\
version: 1
project: demo
params:
  name: plain
steps:
  s:
    cmd: "python args.py --name=${params.name} ${params.name} 'quoted ${params.name}' $${HOME}"
    deps: [args.py]
    outs: [build/args.json]
"""


def argv(run_cli: RunCli, root: Path, *args: str) -> list[str]:
    result = run_cli(root, "build", *args)
    assert result.exit_code == 0, result.stderr
    return list(json.loads((root / "build" / "args.json").read_text(encoding="utf-8")))


def test_a_param_in_a_string_cmd_is_one_argument(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project({"mlproject.yaml": PROJECT, "args.py": ARGS, "build/.keep": ""})
    assert argv(run_cli, root) == ["--name=plain", "plain", "quoted plain", "${HOME}"]
    value = "two words; $(touch x) 'single' \"double\""
    assert argv(run_cli, root, "-P", f"name={value}") == [f"--name={value}", value, f"quoted {value}", "${HOME}"]
    assert not (root / "x").exists()
