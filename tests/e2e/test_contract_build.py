"""Data that breaks its contract is a clear contract error at build (exit 1), never a polars or
xgboost traceback: dates that do not parse, NaN and inf, bad rows named, the wrong delimiter."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

MakeProject = Callable[[dict[str, str | bytes]], Path]
RunCli = Callable[..., Result]
F = "mlproject.yaml"


def project(schema: str) -> str:
    return "version: 1\nproject: demo\ndatasets:\n  t:\n    path: data/t.csv\n    schema:\n" + textwrap.indent(
        textwrap.dedent(schema), "      ")


def failure(run_cli: RunCli, root: Path) -> list[str]:
    """The lines of a failed build's error, without the log's run id."""
    result = run_cli(root, "build")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    lines = result.stderr.splitlines()
    return [line for line in lines if not line.startswith("  | #") and line != "  last lines of its log:"]


def test_datetime_on_a_column_of_integers(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project({F: project("when: {type: datetime}\n"), "data/t.csv": "id,when\n1,5\n2,6\n3,2024-01-01\n"})
    assert failure(run_cli, root) == [
        "FAILED datasets.t: 'data/t.csv' breaks its contract (1 problem):",
        "  column 'when': rule type datetime: 2 bad rows, e.g. ['5', '6'] at rows [1, 2]",
        "error: 1 node(s) failed: datasets.t",
    ]


def test_type_errors_name_their_rows(make_project: MakeProject, run_cli: RunCli) -> None:
    rows = "".join(f"{i}\n" for i in range(100)).replace("\n17\n", "\nseventeen\n").replace("\n42\n", "\n4.2\n")
    root = make_project({F: project("n: {type: int64}\n"), "data/t.csv": "n\n" + rows})
    assert failure(run_cli, root) == [
        "FAILED datasets.t: 'data/t.csv' breaks its contract (1 problem):",
        "  column 'n': rule type int64: 2 bad rows, e.g. ['seventeen', '4.2'] at rows [18, 43]",
        "error: 1 node(s) failed: datasets.t",
    ]


def test_nan_and_inf_are_missing_values(make_project: MakeProject, run_cli: RunCli) -> None:
    data = "x\n1.5\ninf\nnan\n-inf\n2\n"
    root = make_project({F: project("x: {type: float64, nullable: false}\n"), "data/t.csv": data})
    assert failure(run_cli, root) == [
        "FAILED datasets.t: 'data/t.csv' breaks its contract (1 problem):",
        "  column 'x': rule nullable false: 3 bad rows, e.g. rows [2, 3, 4]",
        "error: 1 node(s) failed: datasets.t",
    ]
    make_project({F: project("x: {type: float64, nullable: false, allow_non_finite: true}\n")})
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stderr


def test_a_semicolon_delimited_file_says_so(make_project: MakeProject, run_cli: RunCli) -> None:
    schema = "id: {type: int64}\nage: {type: int64}\nplan: {type: str}\n"
    root = make_project({F: project(schema), "data/t.csv": "id;age;plan\n1;30;pro\n"})
    assert failure(run_cli, root) == [
        "FAILED datasets.t: 'data/t.csv' breaks its contract (1 problem):",
        "  the file parsed into a single column 'id;age;plan': it looks delimited by ';', but mlmake reads CSV "
        "delimited by ','; convert the file, or read it with a python: feature hook",
        "error: 1 node(s) failed: datasets.t",
    ]


MODEL = """\
models:
  m:
    features: t
    target: y
    task: regression
    params: {num_boost_round: 2, nthread: 1}
"""


def test_inf_never_reaches_xgboost(make_project: MakeProject, run_cli: RunCli) -> None:
    rows = "".join(f"{i},{'inf' if i == 7 else i / 2},{i % 3}\n" for i in range(40))
    text = "version: 1\nproject: demo\ndatasets:\n  t: {path: data/t.csv}\n" + MODEL
    root = make_project({F: text, "data/t.csv": "id,x,y\n" + rows})
    lines = failure(run_cli, root)
    assert lines[lines.index("FAILED models.m: input column(s) ['x'] hold inf or -inf (or a number too large for "
                             "float32), which xgboost cannot train on; declare the column as float in its "
                             "dataset's schema (inf is then a missing value) or replace the values in the "
                             "feature set"):][-1] == "error: 1 node(s) failed: models.m"
    # declared, the inf is a missing value and the model trains
    text = text.replace("  t: {path: data/t.csv}\n", "  t: {path: data/t.csv, schema: {x: {type: float64}}}\n")
    make_project({F: text})
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stderr
