"""The mermaid mlmake emits parses with the real mermaid parser, under node.

`mlmake graph --format mermaid` and the ```mermaid block of `mlmake plan --format markdown`
(plain, and the pull-request comment of `--base`) on copies of examples/churn and
examples/penguins: fresh, and around real builds of penguins so that nodes carry every action
class (new, build, maybe, restore, fresh, absent) and a node leaves the file (remove).

The parser is the `mermaid` npm package, run headless by tools/mermaid-check/check.mjs (a
jsdom window stands in for the browser). Every diagram goes through one node start; each
diagram is its own test. Skipped where node or tools/mermaid-check/node_modules is missing
(`cd tools/mermaid-check && npm ci` installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.helpers import copy_example as copy_clean
from tests.helpers import run_cli

REPO = Path(__file__).resolve().parents[2]
CHECKER = REPO / "tools" / "mermaid-check"
NODE = shutil.which("node")
GIT = shutil.which("git")
GIT_ENV = {"GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.com", "GIT_COMMITTER_NAME": "ci",
           "GIT_COMMITTER_EMAIL": "ci@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}

pytestmark = [
    pytest.mark.skipif(NODE is None, reason="needs node (Node.js) to run the mermaid parser"),
    pytest.mark.skipif(not (CHECKER / "node_modules" / "mermaid").is_dir(),
                       reason="tools/mermaid-check/node_modules is missing: cd tools/mermaid-check && npm ci"),
]

# Every diagram the module fixture makes: (name, what it should contain).
DIAGRAMS = [
    "churn-graph", "churn-plan-new", "penguins-graph", "penguins-plan-new", "penguins-plan-fresh",
    "penguins-plan-build-maybe", "penguins-plan-absent", "penguins-plan-restore", "penguins-plan-remove",
    "penguins-pr-comment", "penguins-pr-history-accuracy", "penguins-pr-history-f1", "penguins-pr-history-mlogloss",
]
ACTION_CLASSES = ("new", "build", "maybe", "restore", "check", "fresh", "absent")
MERMAID_BLOCK = re.compile(r"^```mermaid\n(.*?)^```$", re.S | re.M)


def check(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """node tools/mermaid-check/check.mjs ARGS (stdin when no file is given)."""
    assert NODE is not None
    return subprocess.run([NODE, str(CHECKER / "check.mjs"), *args], input=stdin, capture_output=True, text=True,
                          timeout=120, cwd=CHECKER)


def mlmake(root: Path, *args: str) -> str:
    result = run_cli(root, *args)
    assert result.exit_code == 0, f"mlmake {' '.join(args)} failed ({result.exit_code}):\n{result.stderr}"
    return result.stdout


def block(markdown: str) -> str:
    """The one ```mermaid flowchart of a markdown plan (a pull-request comment also has xycharts)."""
    found = [b for b in MERMAID_BLOCK.findall(markdown) if b.startswith("flowchart")]
    assert len(found) == 1, f"expected one mermaid flowchart, found {len(found)}:\n{markdown}"
    return str(found[0])


def xycharts(markdown: str) -> dict[str, str]:
    """The comment's metric-history charts, by their title ("models.species: accuracy")."""
    found = [b for b in MERMAID_BLOCK.findall(markdown) if b.startswith("xychart-beta")]
    return {re.search(r'title "([^"]+)"', b).group(1): b for b in found}  # type: ignore[union-attr]


def copy_example(name: str, dest: Path) -> Path:
    root = dest / name
    copy_clean(name, root)
    return root


def drop_node(root: Path, section: str, name: str) -> None:
    yaml = YAML()  # round trip: the rest of the file stays as it was
    path = root / "mlproject.yaml"
    data = yaml.load(path.read_text(encoding="utf-8"))
    del data[section][name]
    with path.open("w", encoding="utf-8") as f:
        yaml.dump(data, f)


def git(root: Path, *args: str) -> None:
    assert GIT is not None
    done = subprocess.run([GIT, *args], cwd=root, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **GIT_ENV})
    assert done.returncode == 0, f"git {args} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def recorded() -> dict[str, list[dict[str, Any]]]:
    """node -> its run records (`mlmake runs --json`) when the pull-request comment was written."""
    return {}


@pytest.fixture(scope="module")
def diagrams(tmp_path_factory: pytest.TempPathFactory, recorded: dict[str, list[dict[str, Any]]]) -> dict[str, str]:
    """name -> mermaid text, from the real CLI on copies of the examples."""
    tmp = tmp_path_factory.mktemp("mermaid")
    out: dict[str, str] = {}

    churn = copy_example("churn", tmp)
    out["churn-graph"] = mlmake(churn, "graph", "--format", "mermaid")
    out["churn-plan-new"] = block(mlmake(churn, "plan", "--format", "markdown"))

    penguins = copy_example("penguins", tmp)
    if GIT:  # for `plan --base HEAD`: the lock of the first build is committed
        git(penguins, "init", "-q")
    out["penguins-graph"] = mlmake(penguins, "graph", "--format", "mermaid")
    out["penguins-plan-new"] = block(mlmake(penguins, "plan", "--format", "markdown"))
    mlmake(penguins, "build")
    out["penguins-plan-fresh"] = block(mlmake(penguins, "plan", "--format", "markdown"))
    out["penguins-plan-build"] = block(
        mlmake(penguins, "plan", "--format", "markdown", "-P", "models.species.params.max_depth=2"))
    # a contract change rebuilds the dataset; what reads it waits to see whether its table changed
    out["penguins-plan-build-maybe"] = block(
        mlmake(penguins, "plan", "--format", "markdown", "-P", "datasets.penguins.schema.year.max=2010"))
    out["penguins-plan-check"] = block(
        mlmake(penguins, "plan", "--format", "markdown", "-P", "models.species.gates.accuracy=>= 0.95"))
    if GIT:
        git(penguins, "add", "-A")
        git(penguins, "commit", "-q", "-m", "built")
        comment = mlmake(
            penguins, "plan", "--format", "markdown", "--base", "HEAD", "-P", "models.species.params.max_depth=2")
        out["penguins-pr-comment"] = block(comment)
        for title, chart in xycharts(comment).items():
            out[f"penguins-pr-history-{title.rsplit(': ', 1)[1]}"] = chart
        recorded["models.species"] = json.loads(mlmake(penguins, "runs", "--json", "--node", "models.species"))
    shutil.rmtree(penguins / "build")  # the lock says built, the outputs are not here
    out["penguins-plan-absent"] = block(mlmake(penguins, "plan", "--format", "markdown"))
    # max_depth=2 built once, so going back to it restores from the cache
    mlmake(penguins, "build", "models.species", "-P", "models.species.params.max_depth=2")
    out["penguins-plan-restore"] = block(mlmake(penguins, "plan", "--format", "markdown"))
    drop_node(penguins, "deploy", "species_scores")
    out["penguins-plan-remove"] = block(mlmake(penguins, "plan", "--format", "markdown"))
    return out


@pytest.fixture(scope="module")
def parsed(diagrams: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """name -> the checker's verdict line for it (one node start for every diagram)."""
    tmp = tmp_path_factory.mktemp("mermaid-files")
    files = []
    for name, text in diagrams.items():
        path = tmp / f"{name}.mmd"
        path.write_text(text, encoding="utf-8")
        files.append(str(path))
    done = check(*files)
    verdicts: dict[str, str] = {}
    for line in (done.stdout + done.stderr).splitlines():
        head, _, rest = line.partition(": ")
        name = Path(head).stem
        if name in diagrams:
            verdicts[name] = verdicts.get(name, "") + rest + "\n"
        elif verdicts:  # a parse error's following lines (the caret, the expected tokens)
            verdicts[list(verdicts)[-1]] += line + "\n"
    assert set(verdicts) == set(diagrams), f"checker output:\n{done.stdout}\n{done.stderr}"
    return verdicts


@pytest.mark.parametrize("name", DIAGRAMS)
def test_mermaid_parses(name: str, diagrams: dict[str, str], parsed: dict[str, str]) -> None:
    if name not in diagrams:
        pytest.skip("needs git (plan --base reads the lock of a git revision)")
    kind = "xychart" if "-history-" in name else "flowchart"
    assert parsed[name].startswith(f"ok: {kind}"), (
        f"mermaid rejects the diagram {name}:\n{parsed[name]}\n--- diagram ---\n{diagrams[name]}")


def test_the_history_charts_hold_the_recorded_metrics(diagrams: dict[str, str],
                                                      recorded: dict[str, list[dict[str, Any]]]) -> None:
    """Each xychart of the comment is one metric of the changed model over its built runs, oldest
    first, with the values the run records hold."""
    if "penguins-pr-comment" not in diagrams:
        pytest.skip("needs git (plan --base reads the lock of a git revision)")
    built = [r for r in reversed(recorded["models.species"]) if r["status"] == "built"]
    assert len(built) == 1  # the first build; the comment's max_depth=2 is not built yet
    for metric in ("accuracy", "f1", "mlogloss"):
        chart = diagrams[f"penguins-pr-history-{metric}"]
        values = re.search(r"^  line \[(.*)\]$", chart, re.M)
        assert values is not None, chart
        assert [float(v) for v in values.group(1).split(", ")] == [r["metrics"][metric] for r in built]
        assert chart.splitlines()[:4] == ["xychart-beta", f'  title "models.species: {metric}"',
                                          '  x-axis "run" ["1"]', f'  y-axis "{metric}"']


def test_the_diagrams_cover_every_action_class(diagrams: dict[str, str]) -> None:
    """So the parse tests above saw each classDef and `:::class` mlmake can write."""
    text = "\n".join(diagrams.values())
    for action in ACTION_CLASSES:
        assert f":::{action}" in text and f"classDef {action} " in text, action
    assert ":::" not in diagrams["penguins-graph"]  # the plain graph has no actions
    assert "deploy.species_scores" not in diagrams["penguins-plan-remove"]  # a removed node is not drawn
    assert diagrams["penguins-plan-restore"].count(":::restore") == 1


def test_the_checker_rejects_broken_mermaid(tmp_path: Path) -> None:
    """The check can fail: mermaid's parse error comes back, named by file, with exit 1."""
    good = 'flowchart LR\n  n0["datasets.a<br/><small>dataset</small>"]:::new\n  n0 --> n1\n'
    cases = {
        "good": good,
        "unclosed-label": good.replace('"]:::new', ":::new"),
        "not-an-edge": good.replace("-->", "-- >"),
        "classdef-without-name": good + "  classDef\n",
        "empty": "",
    }
    for name, text in cases.items():
        (tmp_path / f"{name}.mmd").write_text(text, encoding="utf-8")
    done = check(*(str(tmp_path / f"{name}.mmd") for name in cases))
    assert done.returncode == 1
    assert f"{tmp_path / 'good.mmd'}: ok: flowchart" in done.stdout
    for name in ("unclosed-label", "not-an-edge", "classdef-without-name"):
        assert f"{tmp_path / name}.mmd: does not parse: Parse error" in done.stderr, (name, done.stderr)
    assert f"{tmp_path / 'empty.mmd'}: no mermaid text" in done.stderr


def test_the_checker_reads_stdin() -> None:
    done = check(stdin="flowchart LR\n  a[[x\n")
    assert done.returncode == 1
    assert done.stderr.startswith("<stdin>: does not parse: Parse error"), done.stderr
