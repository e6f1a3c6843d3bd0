"""Fairness gates on the churn example: gates over the model's slices (`auc.min_slice`, the worst
slice; `auc.slice_gap`, the largest gap between two slices), judged by the build and re-judged by
`plan` on the recorded metrics, each failure naming the slice.

The churn model's held-out AUC is about 0.82 on the `basic` plan and 0.79 on `pro`: a threshold
between the two makes the `pro` slice fail on purpose. Expected numbers are read from the model's
metrics.json (the slices it wrote), so the messages are checked exactly."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from mlmake.state.lock import read_lock
from tests.helpers import build, copy_example

RunCli = Callable[..., Result]
GATE = '      auc: ">= 0.70"\n'
FAIR = '      auc: ">= 0.70"\n      auc.min_slice: ">= 0.80"\n      auc.slice_gap: "<= 0.02"\n'


@pytest.fixture(scope="module")
def built_churn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers import run_cli

    root = copy_example("churn", tmp_path_factory.mktemp("fair") / "churn")
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stderr
    return root


def slice_auc(root: Path) -> dict[str, float]:
    summary = json.loads((root / "build" / "models" / "churn_xgb" / "metrics.json").read_text(encoding="utf-8"))
    return {label: values["auc"] for label, values in summary["slices"]["plan"].items()}


def with_gates(root: Path, gates: str) -> None:
    path = root / "mlproject.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(GATE) == 1
    path.write_text(text.replace(GATE, gates), encoding="utf-8")


def test_a_slice_made_to_fail_fails_the_build_naming_the_slice(run_cli: RunCli, built_churn: Path,
                                                               tmp_path: Path) -> None:
    root = tmp_path / "churn"
    shutil.copytree(built_churn, root, symlinks=True)
    auc = slice_auc(root)
    assert auc["pro"] < 0.80 <= auc["basic"]  # the pro plan's customers are the slice that fails
    gap = auc["basic"] - auc["pro"]
    with_gates(root, FAIR)
    lock_bytes = (root / "mlproject.lock").read_bytes()

    plan = run_cli(root, "plan")
    assert plan.exit_code == 0, plan.stderr
    assert [line.strip() for line in plan.stdout.splitlines() if "gate auc." in line] == [
        f"* models.churn_xgb            gate auc.min_slice >= 0.80 added: re-checked, fails: "
        f"auc.min_slice = {auc['pro']:.4f} (slice plan=pro)",
        f"gate auc.slice_gap <= 0.02 added: re-checked, fails: auc.slice_gap = {gap:.4f} "
        f"(plan: pro {auc['pro']:.4f}, basic {auc['basic']:.4f})"]

    result, ran = build(run_cli, root)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"FAILED models.churn_xgb: gate auc.min_slice >= 0.8 failed: auc.min_slice = {auc['pro']:.4f} "
        f"(slice plan=pro); gate auc.slice_gap <= 0.02 failed: auc.slice_gap = {gap:.4f} "
        f"(plan: pro {auc['pro']:.4f}, basic {auc['basic']:.4f}) (judged on the recorded metrics)")
    assert ran == {"models.churn_xgb": "failed"}  # gates are not fingerprinted: nothing retrained
    assert (root / "mlproject.lock").read_bytes() == lock_bytes



def test_a_first_build_with_a_failing_slice_gate_records_nothing_downstream(run_cli: RunCli, tmp_path: Path) -> None:
    root = copy_example("churn", tmp_path / "churn")
    with_gates(root, '      auc: ">= 0.70"\n      auc.min_slice: ">= 0.80"\n')
    result, ran = build(run_cli, root)
    assert result.exit_code == 1
    auc = slice_auc_kept(root)
    assert result.stderr.splitlines()[:2] == [
        f"FAILED models.churn_xgb: gate auc.min_slice >= 0.8 failed: auc.min_slice = {auc['pro']:.4f} "
        "(slice plan=pro)",
        "(outputs kept for inspection in .mlmake/failed/models.churn_xgb)"]
    assert ran["models.churn_xgb"] == "failed"
    assert "models.churn_xgb" not in read_lock(root).nodes
    assert "deploy.churn_api" not in read_lock(root).nodes

    with_gates_again(root, '      auc.min_slice: ">= 0.80"\n', '      auc.min_slice: ">= 0.75"\n')
    result, ran = build(run_cli, root)
    assert result.exit_code == 0, result.stderr
    entry = read_lock(root).nodes["models.churn_xgb"]
    assert entry.gates == {"auc": ">= 0.70", "auc.min_slice": ">= 0.75"}
    assert entry.metrics["slices"] == {"plan": json.loads(
        (root / "build" / "models" / "churn_xgb" / "metrics.json").read_text(encoding="utf-8"))["slices"]["plan"]}


def slice_auc_kept(root: Path) -> dict[str, float]:
    kept = root / ".mlmake" / "failed" / "models.churn_xgb" / "0-churn_xgb" / "metrics.json"
    summary = json.loads(kept.read_text(encoding="utf-8"))
    return {label: values["auc"] for label, values in summary["slices"]["plan"].items()}


def with_gates_again(root: Path, old: str, new: str) -> None:
    path = root / "mlproject.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
