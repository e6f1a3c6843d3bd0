"""Outputs never delete what nothing rebuilds, and nothing is read or written outside the
project through a symlink: checked by `validate` and again by `build` just before writing."""

from __future__ import annotations

import hashlib
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

MakeProject = Callable[[dict[str, str | bytes]], Path]
RunCli = Callable[..., Result]
F = "mlproject.yaml"
MAKE = "import sys, pathlib\np = pathlib.Path(sys.argv[1])\np.parent.mkdir(parents=True, exist_ok=True)\n" \
       "p.write_text('made\\n')\n"
HEAD = "version: 1\nproject: demo\n"
HINT = "  hint: name a new file or folder, such as one under build/\n"


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root (links not followed) → the hash of its bytes."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if ".mlmake" not in path.relative_to(root).parts:
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def expect_refused(run_cli: RunCli, root: Path, stderr: str, *watched: Path) -> None:
    """validate and build both exit 1 with `stderr`; build changes no file in root or in `watched`."""
    before = [snapshot(root)] + [snapshot(w) for w in watched]
    for command in ("validate", "build"):
        result = run_cli(root, command)
        assert (result.exit_code, result.stdout, result.stderr) == (1, "", stderr), command
    assert [snapshot(root)] + [snapshot(w) for w in watched] == before


def located(line: int, col: int, key: str, message: str, source: str) -> str:
    caret = " " * (col - 1) + "^"
    return f"mlproject.yaml:{line}:{col}: {key}: {message}\n  {source}\n  {caret}\n{HINT}1 error found\n"


def test_an_output_may_not_be_the_project_file(make_project: MakeProject, run_cli: RunCli) -> None:
    source = "  a: {cmd: [python, scripts/make.py, mlproject.yaml], outs: [mlproject.yaml]}"
    root = make_project({F: HEAD + "steps:\n" + source + "\n", "scripts/make.py": MAKE})
    expect_refused(run_cli, root, located(
        4, 62, "steps.a.outs[0]", "the output 'mlproject.yaml' is the project file: building would delete it", source))


def test_an_output_may_not_hold_the_script_that_writes_it(make_project: MakeProject, run_cli: RunCli) -> None:
    source = "  b: {cmd: [python, scripts/make.py, scripts/x], outs: [scripts]}"
    root = make_project({F: HEAD + "steps:\n" + source + "\n", "scripts/make.py": MAKE})
    expect_refused(run_cli, root, located(
        4, 57, "steps.b.outs[0]", "the output 'scripts' contains the script steps.b runs ('scripts/make.py'): "
        "building would delete it", source))


@pytest.mark.parametrize(("out", "message"), [
    (".mlmake-artifacts", "the output '.mlmake-artifacts' is mlmake's artifact pointers: building would delete it"),
    ("mlproject.lock", "the output 'mlproject.lock' is the project's lock: building would delete it"),
    (".mlmake-artifacts/x", "the output '.mlmake-artifacts/x' is inside '.mlmake-artifacts', which mlmake manages"),
    ("data", "the output 'data' contains an input of steps.c ('data/in.csv'): building would delete it"),
    ("lib", "the output 'lib' contains source code read by steps.c ('lib/util.py'): building would delete it"),
])
def test_an_output_may_not_hold_state_or_inputs(make_project: MakeProject, run_cli: RunCli, out: str,
                                                 message: str) -> None:
    source = f"  c: {{cmd: [python, scripts/make.py, x], deps: [data/in.csv, lib/util.py], outs: [{out}]}}"
    root = make_project({F: HEAD + "steps:\n" + source + "\n", "scripts/make.py": MAKE, "data/in.csv": "a\n1\n",
                         "lib/util.py": "X = 1\n", "mlproject.lock": "version: 1\n",
                         ".mlmake-artifacts/models/m.dvc": "outs: []\n"})
    expect_refused(run_cli, root, located(4, source.index("outs: [") + 8, "steps.c.outs[0]", message, source))


def test_a_batch_output_may_not_be_the_project_file(make_project: MakeProject, run_cli: RunCli) -> None:
    text = HEAD + textwrap.dedent("""\
        datasets:
          t: {path: data/t.csv}
        models:
          m: {features: t, target: y, task: regression}
        deploy:
          scores: {model: m, kind: batch, input: t, output: mlproject.yaml}
        """)
    root = make_project({F: text, "data/t.csv": "x,y\n1,2\n"})
    source = "  scores: {model: m, kind: batch, input: t, output: mlproject.yaml}"
    expect_refused(run_cli, root, located(
        8, 53, "deploy.scores.output", "the output 'mlproject.yaml' is the project file: building would delete it",
        source))


def test_an_output_through_a_symlink_out_of_the_project(make_project: MakeProject, run_cli: RunCli,
                                                       tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("precious\n", encoding="utf-8")
    source = "  d: {cmd: [python, scripts/make.py, ext/precious.txt], outs: [ext/precious.txt]}"
    root = make_project({"proj/" + F: HEAD + "steps:\n" + source + "\n", "proj/scripts/make.py": MAKE}) / "proj"
    (root / "ext").symlink_to(outside)
    message = f"the path 'ext/precious.txt' leads outside the project through a symlink (to {outside}/precious.txt)"
    expect_refused(run_cli, root, located(4, 64, "steps.d.outs[0]", message, source), outside)


def test_a_symlink_made_during_the_build_is_refused_before_writing(make_project: MakeProject, run_cli: RunCli,
                                                                   tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("precious\n", encoding="utf-8")
    link = f"import os; os.symlink({str(outside)!r}, 'ext'); open('made.txt', 'w').write('1')"
    text = HEAD + textwrap.dedent(f"""\
        steps:
          link: {{cmd: [python, -c, "{link}"], outs: [made.txt]}}
          write: {{cmd: [python, scripts/make.py, ext/precious.txt], deps: [made.txt], outs: [ext/precious.txt]}}
        """)
    root = make_project({"proj/" + F: text, "proj/scripts/make.py": MAKE}) / "proj"
    assert run_cli(root, "validate").exit_code == 0
    result = run_cli(root, "build")
    assert (result.exit_code, result.stderr) == (1, "FAILED steps.write: the output 'ext/precious.txt' leads "
                                                 "outside the project through a symlink; not written\n"
                                                 "error: 1 node(s) failed: steps.write\n")
    assert (outside / "precious.txt").read_text(encoding="utf-8") == "precious\n"
    assert sorted(p.name for p in outside.iterdir()) == ["precious.txt"]


def test_a_dataset_read_through_a_symlink_needs_allow_outside(make_project: MakeProject, run_cli: RunCli,
                                                              tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "t.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    root = make_project({"proj/" + F: HEAD + "datasets:\n  t: {path: data/t.csv}\n"}) / "proj"
    (root / "data").symlink_to(shared)
    result = run_cli(root, "validate")
    assert (result.exit_code, result.stderr) == (1, textwrap.dedent(f"""\
        mlproject.yaml:4:13: datasets.t.path: the path 'data/t.csv' leads outside the project through a symlink \
(to {shared}/t.csv)
            t: {{path: data/t.csv}}
                      ^
          hint: set allow_outside: true on the dataset to read it there
        1 error found
        """))
    (root / F).write_text(HEAD + "datasets:\n  t: {path: data/t.csv, allow_outside: true}\n", encoding="utf-8")
    result = run_cli(root, "validate")
    assert (result.exit_code, result.stderr) == (0, "")


def test_outputs_that_are_new_files_pass(make_project: MakeProject, run_cli: RunCli) -> None:
    text = HEAD + "steps:\n  s: {cmd: [python, scripts/make.py, build/x/out.txt], deps: [scripts/make.py], " \
                  "outs: [build/x]}\n"
    root = make_project({F: text, "scripts/make.py": MAKE})
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stderr
    assert (root / "build" / "x" / "out.txt").read_text(encoding="utf-8") == "made\n"


def test_a_batch_output_through_a_symlink_made_during_the_build(make_project: MakeProject, run_cli: RunCli,
                                                                tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    rows = "x,y\\n" + "".join(f"{i},{i % 2}\\n" for i in range(30))
    make = (f"import os; os.symlink({str(outside)!r}, 'out'); os.makedirs('data', exist_ok=True); "
            f"open('data/t.csv', 'w').write({rows!r})")
    text = HEAD + textwrap.dedent(f"""\
        steps:
          make: {{cmd: [python, -c, "{make}"], outs: [data/t.csv]}}
        datasets:
          t: {{path: data/t.csv}}
        models:
          m: {{features: t, target: y, task: regression, params: {{num_boost_round: 2, nthread: 1}}}}
        deploy:
          scores: {{model: m, kind: batch, input: t, output: out/scores.parquet}}
        """)
    root = make_project({"proj/" + F: text}) / "proj"
    assert run_cli(root, "validate").exit_code == 0
    result = run_cli(root, "build")
    assert result.exit_code == 1
    assert result.stderr.startswith("FAILED deploy.scores: the output 'out/scores.parquet' leads outside the "
                                    "project through a symlink; not written\n")
    assert list(outside.iterdir()) == []
