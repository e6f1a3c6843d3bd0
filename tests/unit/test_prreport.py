"""mlmake/prreport.py: the pull-request comment, from hand-built plans and snapshots on the
graph of a tiny project. Golden files: tests/golden/pr_*.md (`UPDATE_GOLDEN=1` rewrites them)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlmake.core.graph import Graph
from mlmake.core.kind import NodeDecl
from mlmake.outputs import prreport
from mlmake.outputs.diff import Snapshot
from mlmake.planning.plan import ABSENT, BUILD, FRESH, MAYBE, NEW, REMOVE, RESTORE, Decision, Plan, Reason
from tests.fakes import load

MakeProject = Callable[[dict[str, str | bytes]], Path]
GOLDEN = Path(__file__).resolve().parents[1] / "golden"

PROJECT = """\
version: 1
project: demo
datasets:
  customers:
    path: data/customers.csv
models:
  churn:
    features: customers
    target: churned
    task: binary
    params: {max_depth: 8}
    metrics: [auc, logloss]
    gates: {auc: ">= 0.7", logloss: "<= baseline + 0.02"}
  fresh:
    features: customers
    target: churned
    task: binary
    metrics: [auc]
    gates: {auc: ">= baseline - 0.01"}
steps:
  report:
    cmd: [python, -c, pass]
    deps: [models.churn]
    outs: [build/report.md]
"""

BASE = Snapshot(
    "main",
    metrics={"datasets.customers": {"rows": 100, "columns": 3}, "models.churn": {"auc": 0.8, "logloss": 0.4}},
    configs={"datasets.customers": {"path": "data/customers.csv"},
             "models.churn": {"params": {"max_depth": 3}, "gates": {"auc": ">= 0.7"}}},
)
CONFIGS: dict[str, dict[str, Any]] = {"datasets.customers": {"path": "data/customers.csv"},
           "models.churn": {"params": {"max_depth": 8}, "gates": {"auc": ">= 0.7", "logloss": "<= baseline + 0.02"}},
           "models.fresh": {"metrics": ["auc"]}}

PENDING = Plan((
    Decision("datasets.customers", "dataset", FRESH, (), "f1"),
    Decision("models.churn", "model", BUILD, (Reason("config", "params.max_depth", 3, 8),
                                          Reason("config_added", "gates.logloss", None, "<= baseline + 0.02")), "f2"),
    Decision("models.fresh", "model", NEW, (Reason("new"),), "f3"),
    Decision("steps.report", "cmd", MAYBE, (Reason("upstream_pending", "models.churn"),), "f4"),
))
PENDING_NOW = Snapshot("this branch", {"datasets.customers": {"rows": 100, "columns": 3}}, CONFIGS)

BUILT = Plan(tuple(Decision(s.address, s.kind, FRESH, (), s.fingerprint) for s in PENDING.steps))
BUILT_NOW = Snapshot("this branch", {"datasets.customers": {"rows": 100, "columns": 3},
                                     "models.churn": {"auc": 0.78, "logloss": 0.43}, "models.fresh": {"auc": 0.75}},
                     CONFIGS)

DURATIONS = {"datasets.customers": 0.2, "models.churn": 12.3, "steps.report": 0.5}


@pytest.fixture
def graph(make_project: MakeProject) -> Graph:
    root = make_project({"mlproject.yaml": PROJECT, "data/customers.csv": "customer_id,x,churned\n1,2,true\n"})
    graph: Graph = load(root)[1]
    return graph


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs (UPDATE_GOLDEN=1 rewrites it)"


def tables(text: str) -> list[list[str]]:
    """Every markdown table: consecutive lines starting with '|'."""
    out: list[list[str]] = []
    current: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            out.append(current)
            current = []
    return out


def check_markdown(text: str) -> None:
    """Renders sanely: tables keep their column count, fences and <details> are balanced, mermaid is fenced."""
    lines = text.splitlines()
    assert text.endswith("\n") and not text.endswith("\n\n")
    fences = [i for i, line in enumerate(lines) if line.startswith("```")]
    assert len(fences) % 2 == 0, "an unclosed code fence"
    for start, end in zip(fences[::2], fences[1::2], strict=True):
        assert lines[end] == "```"
        if lines[start] == "```mermaid":
            body = lines[start + 1:end]
            assert body[0] == "flowchart LR" and all(line.startswith("  ") for line in body[1:])
    assert sum(line == "```mermaid" for line in lines) == 1
    assert text.count("<details>") == text.count("</details>") == 1
    for table in tables(text):
        assert len(table) >= 3, table
        assert re.fullmatch(r"\|(---\|)+", table[1]), table
        counts = {row.replace("\\|", "").count("|") for row in table}
        assert counts == {table[1].count("|")}, f"rows with a different column count: {table}"
        assert all(row.endswith("|") for row in table)
    for i, line in enumerate(lines):
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):
            assert i == 0 or lines[i - 1] == "", f"line {i + 1}: a table needs a blank line before it"


# --- golden ---------------------------------------------------------------------------------------


def test_before_the_build(graph: Graph) -> None:
    text = prreport.pr_markdown(PENDING, graph, "demo", BASE, PENDING_NOW, DURATIONS)
    check_golden("pr_pending.md", text)
    check_markdown(text)
    lines = text.splitlines()
    assert lines[0] == prreport.MARKER
    assert lines[5] == "Estimated build time: 12.8 s (from the run history), plus 1 node(s) never built here."
    assert "Not built yet (metrics known after the build): `models.churn`, `models.fresh`" in lines
    assert "| `models.churn` | `params.max_depth` | 3 | 8 | +5 (+166.67%) |" in lines
    assert lines[-3:] == ["| `models.churn` | `auc >= 0.7` | - | 0.8 | after the build |",
                          "| `models.churn` | `logloss <= baseline + 0.02` | - | 0.4 | after the build |",
                          "| `models.fresh` | `auc >= baseline - 0.01` | - | - | after the build |"]


def test_after_the_build(graph: Graph) -> None:
    text = prreport.pr_markdown(BUILT, graph, "demo", BASE, BUILT_NOW, DURATIONS)
    check_golden("pr_built.md", text)
    check_markdown(text)
    lines = text.splitlines()
    assert "Estimated build time: nothing to build." in lines
    assert "Not built yet" not in text
    assert "| `models.churn` | `auc` | 0.8 | 0.78 | -0.02 (-2.50%) |" in lines
    assert "| `models.fresh` | `auc` | - | 0.75 |  |" in lines
    assert lines[-3:] == ["| `models.churn` | `auc >= 0.7` | 0.78 | 0.8 | pass |",
                          "| `models.churn` | `logloss <= baseline + 0.02` | 0.43 | 0.4 | **FAIL** |",
                          "| `models.fresh` | `auc >= baseline - 0.01` | 0.75 | - | not checked (no baseline) |"]


def test_nothing_changed_and_no_gates(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": "version: 1\nproject: plain\nsteps:\n  a:\n    cmd: [python, -c, pass]\n"
                                           "    outs: [build/a.txt]\n"})
    graph = load(root)[1]
    same = Snapshot("x", {"steps.a": {}}, {"steps.a": {"cmd": ["python", "-c", "pass"]}})
    text = prreport.pr_markdown(Plan((Decision("steps.a", "cmd", FRESH, (), "f"),)), graph, "plain",
                                Snapshot("origin/main", same.metrics, same.configs), same, {})
    check_golden("pr_nothing.md", text)
    check_markdown(text)
    assert "Nothing to build: every node is up to date." in text
    assert "No metrics changed between `origin/main` and `this branch`." in text
    assert "No params changed between `origin/main` and `this branch`." in text
    assert "#### Gates" not in text


# --- pieces ---------------------------------------------------------------------------------------


def plan_of(*actions: str) -> Plan:
    return Plan(tuple(Decision(f"steps.s{i}", "cmd", a, (), f"f{i}") for i, a in enumerate(actions)))


@pytest.mark.parametrize(("plan", "durations", "line"), [
    (plan_of(FRESH, ABSENT), {}, "Estimated build time: nothing to build."),
    (plan_of(RESTORE, REMOVE), {"steps.s0": 5.0}, "Estimated build time: nothing to build."),
    (plan_of(NEW, FRESH), {}, "Estimated build time: unknown (1 node(s) never built here)."),
    (plan_of(BUILD, MAYBE), {"steps.s0": 1.25, "steps.s1": 2.0}, "Estimated build time: 3.2 s (from the run history)."),
    (plan_of(BUILD, BUILD), {"steps.s0": 100.0, "steps.s1": 19.94}, "Estimated build time: 119.9 s (from the run "
                                                                    "history)."),
    (plan_of(BUILD, BUILD), {"steps.s0": 100.0, "steps.s1": 20.0}, "Estimated build time: 2.0 min (from the run "
                                                                   "history)."),
    (plan_of(BUILD, NEW, NEW), {"steps.s0": 5400.0}, "Estimated build time: 90.0 min (from the run history), plus "
                                                     "2 node(s) never built here."),
])
def test_estimate(plan: Plan, durations: dict[str, float], line: str) -> None:
    assert prreport._estimate(plan, durations) == line


def test_gate_rows() -> None:
    nodes = {"models.m": NodeDecl("models.m", "model", None, {}, gates={"auc": ">= baseline", "f1": "at least 0.5",
                                                                        "rmse": "<= 2"})}
    graph = Graph(nodes, {"models.m": {}}, {"models.m": ()})
    base = Snapshot("main", {"models.m": {"auc": 0.9, "rmse": True}})
    now = Snapshot("this branch", {"models.m": {"auc": 0.9, "rmse": 3}})
    assert prreport._gate_section(graph, base, now) == [
        "#### Gates", "", "| node | gate | value | baseline | result |", "|---|---|---|---|---|",
        "| `models.m` | `auc >= baseline` | 0.9 | 0.9 | pass |",
        "| `models.m` | `f1 at least 0.5` | | | invalid |",
        "| `models.m` | `rmse <= 2` | 3 | - | **FAIL** |",  # a boolean is not a baseline value
        ""]
    assert prreport._gate_section(Graph({}, {}, {}), base, now) == []


def test_a_failing_slice_gate_row_names_the_slice() -> None:
    nodes = {"models.m": NodeDecl("models.m", "model", None, {}, gates={"auc.min_slice": ">= 0.8",
                                                                        "auc.slice_gap": "<= 0.2"})}
    graph = Graph(nodes, {"models.m": {}}, {"models.m": ()})
    slices = {"plan": {"basic": {"auc": 0.84}, "pro|x": {"auc": 0.71}}}
    now = Snapshot("this branch", {"models.m": {"auc": 0.8, "slices": slices}})
    assert prreport._gate_section(graph, Snapshot("main"), now)[4:6] == [
        "| `models.m` | `auc.min_slice >= 0.8` | 0.71 | - | **FAIL** (slice plan=pro\\|x) |",
        "| `models.m` | `auc.slice_gap <= 0.2` | 0.13 | - | pass |"]


def test_the_approvals_needed_and_given() -> None:
    from mlmake.planning.approval import standing
    from mlmake.state.approvals import Approval

    def given(by: str, fingerprint: str) -> Approval:
        return Approval(by, "2026-12-01T21:00:00Z", "models.m", fingerprint, "p" * 32)

    approvals = {"deploy.api": (given("Ada <a@x>", "f" * 32), given("Bob|B <b@x>", "e" * 32))}
    assert prreport._approval_section([
        standing("deploy.api", 2, "models.m", "f" * 32, approvals),
        standing("deploy.web", 1, "models.m", "d" * 32, approvals, "to be rebuilt: params.eta 0.1 → 0.2"),
    ]) == ["#### Approvals", "", "| target | model | needed | given | void |", "|---|---|---|---|---|",
           "| `deploy.api` | `models.m` `ffffffff` | 2 | 1 **missing**: Ada &lt;a@x&gt; | "
           "Bob\\|B &lt;b@x&gt; (`eeeeeeee`) |",
           "| `deploy.web` | `models.m` `dddddddd` (to be rebuilt: params.eta 0.1 → 0.2) | 1 | "
           "0 **missing**: none | - |",
           ""]
    assert prreport._approval_section([]) == []


def test_a_node_that_is_not_a_model_is_never_listed_as_not_built(graph: Graph) -> None:
    text = prreport.pr_markdown(PENDING, graph, "demo", BASE, PENDING_NOW, {})
    line = next(line for line in text.splitlines() if line.startswith("Not built yet"))
    assert "steps.report" not in line and "datasets.customers" not in line
