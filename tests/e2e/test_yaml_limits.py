"""The project file's YAML at its limits: nesting deeper than documented, bytes that are not
UTF-8, a 10 MB value: each a located error or a plain success, never a traceback."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from mlmake.core import source

MakeProject = Callable[[dict[str, str | bytes]], Path]
RunCli = Callable[..., Result]
F = "mlproject.yaml"


def deep(levels: int) -> str:
    return "version: 1\nproject: demo\nparams:\n  p: " + "[" * levels + "1" + "]" * levels + "\n"


@pytest.mark.parametrize("levels", [61, 62, 400, 100_000])
@pytest.mark.parametrize("parser", ["libyaml", "ruamel"])
def test_nesting_deeper_than_64_levels(make_project: MakeProject, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch,
                                       levels: int, parser: str) -> None:
    if parser == "ruamel":
        monkeypatch.setattr(source, "_compose_with_libyaml", lambda text, yaml: source._SLOW)
    if parser == "ruamel" and levels > 400:
        pytest.skip("the pure parser takes seconds to read 100 000 brackets; 400 is past its old recursion limit")
    result = run_cli(make_project({F: deep(levels)}), "validate")
    if levels == 61:  # the top mapping, params' mapping, 61 lists and the scalar: 64 levels
        assert (result.exit_code, result.stderr) == (0, ""), result.stderr
        return
    # the 65th level is the 63rd list, or the scalar inside the 62nd
    col = 68
    line = deep(levels).splitlines()[3]
    assert (result.exit_code, result.stdout) == (1, "")
    hint = "  hint: a project file needs far fewer; flatten it\n"
    assert result.stderr == (f"mlproject.yaml:4:{col}: the YAML nests deeper than 64 levels\n  {line}\n"
                             + " " * (col + 1) + "^\n" + hint + "1 error found\n")


def test_bytes_that_are_not_utf8_are_located(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project({F: b'version: 1\nproject: demo\ndescription: "caf\xc3\xa9 \xff here"\n'})
    result = run_cli(root, "validate")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == textwrap.dedent("""\
        mlproject.yaml:3:20: the file is not valid UTF-8 (byte 0xff)
          description: "caf\u00e9 \ufffd here"
                             ^
          hint: save the file as UTF-8
        1 error found
        """)


def test_a_10_mb_value_validates(make_project: MakeProject, run_cli: RunCli) -> None:
    # benchmarks/yaml_parse.py prints the time beside the pure parser's
    root = make_project({F: "version: 1\nproject: demo\ndescription: " + "x" * 10_000_000 + "\n"})
    result = run_cli(root, "validate")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "mlproject.yaml is valid: 0 nodes (none)\n", "")
