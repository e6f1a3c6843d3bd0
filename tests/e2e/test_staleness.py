"""Never call a stale artifact fresh (issue 12), through the CLI on copies of examples/penguins.

Each test is a case the planner or the builder once got wrong:
- a renamed model "restored" into the old name's folder, so the new one never existed;
- an identical copy of a model was recorded with the other model's outputs: missing, yet "built";
- a lock entry whose fingerprint differs with no reason the diff could name was called fresh;
- after early cutoff a deploy manifest kept old upstream fingerprints, so the lock depended on history;
- a gate edit retrained the model.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from mlmake.state.lock import read_lock
from tests.helpers import build

REPO = Path(__file__).resolve().parents[2]
RunCli = Callable[..., Result]


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/penguins built once; each test works on a copy."""
    from tests.helpers import run_cli

    root = tmp_path_factory.mktemp("built") / "penguins"
    shutil.copytree(REPO / "examples" / "penguins", root, ignore=shutil.ignore_patterns("build", ".mlmake", "*.lock"))
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stderr
    return root


@pytest.fixture
def root(penguins: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "penguins"
    shutil.copytree(penguins, dest, symlinks=True)
    return dest


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def states(run_cli: RunCli, root: Path) -> dict[str, str]:
    result = run_cli(root, "status", "--json")
    assert result.exit_code == 0, result.stderr
    return {row["node"]: row["state"] for row in json.loads(result.stdout)}


def plan_exit(run_cli: RunCli, root: Path) -> int:
    result = run_cli(root, "plan", "--detailed-exitcode")
    assert result.exit_code in (0, 2), result.stderr
    return result.exit_code


def line(symbol: str, address: str, note: str) -> str:
    """A line of the text plan of penguins (its longest address is features.penguin_features)."""
    return f"{symbol:>2} {address:<25}  {note}"


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_renamed_model_restores_into_its_new_folder_and_its_targets_work(run_cli: RunCli, root: Path) -> None:
    model = tree(root / "build/models/species")
    text = (root / "mlproject.yaml").read_text(encoding="utf-8")
    (root / "mlproject.yaml").write_text(text.replace("  species:\n", "  species_model:\n")
                                         .replace("model: species\n", "model: species_model\n"), encoding="utf-8")
    plan = run_cli(root, "plan")
    assert " < models.species_model" in plan.stdout and "new node" in plan.stdout
    result, ran = build(run_cli, root)
    assert result.exit_code == 0, result.stderr
    # restored, not trained: the same bytes in the node's own folder; the targets read it
    assert ran == {"models.species_model": "restored", "deploy.species_api": "built",
                   "deploy.species_scores": "built"}
    assert tree(root / "build/models/species_model") == model
    lock = read_lock(root)
    assert list(lock.nodes["models.species_model"].outputs) == ["build/models/species_model"]
    assert "models.species" not in lock.nodes
    manifest = json.loads((root / "build/deploy/species_api/manifest.json").read_text(encoding="utf-8"))
    assert manifest["model"]["address"] == "models.species_model"
    assert plan_exit(run_cli, root) == 0
    assert set(states(run_cli, root).values()) == {"built"}


def test_an_identical_copy_of_a_model_gets_outputs_of_its_own(run_cli: RunCli, root: Path) -> None:
    text = (root / "mlproject.yaml").read_text(encoding="utf-8")
    block = text[text.index("  species:\n"):text.index("\ndeploy:")]
    (root / "mlproject.yaml").write_text(text.replace("\ndeploy:", "\n" + block.replace("  species:", "  twin:", 1)
                                                      + "\ndeploy:"), encoding="utf-8")
    result, ran = build(run_cli, root)
    assert result.exit_code == 0, result.stderr
    assert ran == {"models.twin": "restored"}
    assert tree(root / "build/models/twin") == tree(root / "build/models/species")
    assert list(read_lock(root).nodes["models.twin"].outputs) == ["build/models/twin"]
    # plan and status agree: every node built, nothing to do
    assert plan_exit(run_cli, root) == 0
    assert states(run_cli, root)["models.twin"] == "built"
    assert set(states(run_cli, root).values()) == {"built"}


def test_a_fingerprint_that_differs_with_no_nameable_reason_is_not_fresh(run_cli: RunCli, root: Path) -> None:
    recorded = read_lock(root).nodes["models.species"].fingerprint
    fake = "0123456789abcdef0123456789abcdef"
    edit(root / "mlproject.lock", f'\n    fingerprint: "{recorded}"', f'\n    fingerprint: "{fake}"')
    reason = f"fingerprint changed: recorded 01234567, current {recorded[:8]}"
    plan = run_cli(root, "plan")
    # built before under its real fingerprint: restored, not retrained
    assert line("<", "models.species", reason) + "\n" in plan.stdout
    assert plan.stdout.endswith("Plan: 0 to build, 1 to restore from cache, 4 up to date.\n")
    why = run_cli(root, "why", "models.species")
    assert why.stdout.startswith("models.species (model): restore\n"
                                 f"  fingerprint  recorded 0123456789abcdef0123456789abcdef  current {recorded}\n")
    assert f"  reason: {reason}\n" in why.stdout
    assert states(run_cli, root)["models.species"] == "stale"
    assert plan_exit(run_cli, root) == 2
    result, ran = build(run_cli, root)
    assert (result.exit_code, ran) == (0, {"models.species": "restored"})
    assert read_lock(root).nodes["models.species"].fingerprint == recorded
    assert plan_exit(run_cli, root) == 0


def test_lineage_after_early_cutoff_equals_a_clean_builds(run_cli: RunCli, root: Path, tmp_path: Path) -> None:
    # a dataset check changes the dataset's contract.json, not its table: the features read
    # only the table's columns and stop there (early cutoff), but the deploy manifests record
    # the new upstream fingerprints, as a clean build does
    edit(root / "mlproject.yaml", 'rows: ">= 300"', 'rows: ">= 200"')
    result, ran = build(run_cli, root)
    assert result.exit_code == 0, result.stderr
    clean = tmp_path / "clean"
    shutil.copytree(root, clean, ignore=shutil.ignore_patterns("build", ".mlmake", "*.lock", ".mlmake-artifacts",
                                                               ".dvc"))
    assert run_cli(clean, "build").exit_code == 0
    assert (clean / "mlproject.lock").read_text(encoding="utf-8") == (root / "mlproject.lock").read_text(
        encoding="utf-8")
    assert tree(clean / "build") == tree(root / "build")
    assert ran == {"datasets.penguins": "built", "deploy.species_api": "built", "deploy.species_scores": "built"}
    assert "skip features.penguin_features: up to date (upstream output unchanged)" in result.stdout
    assert "skip models.species: up to date (upstream output unchanged)" in result.stdout


def test_a_gate_edit_rejudges_the_recorded_metrics_without_training(run_cli: RunCli, root: Path) -> None:
    model = tree(root / "build")
    edit(root / "mlproject.yaml", 'accuracy: ">= 0.9"', 'accuracy: ">= 0.95"')
    plan = run_cli(root, "plan")
    assert plan.stdout == (" = datasets.penguins\n = features.penguin_features\n"
                           + line("*", "models.species", "gate accuracy >= 0.9 → >= 0.95: re-checked, passes")
                           + "\n = deploy.species_api\n = deploy.species_scores\n\n"
                           "Plan: 0 to build, 1 to re-judge on recorded metrics, 4 up to date.\n")
    assert plan_exit(run_cli, root) == 2
    result, ran = build(run_cli, root)
    assert (result.exit_code, ran) == (0, {})
    assert "skip models.species: gates re-checked on the recorded metrics: gate accuracy >= 0.9 → >= 0.95: " \
           "re-checked, passes" in result.stdout
    assert tree(root / "build") == model
    assert read_lock(root).nodes["models.species"].gates == {"accuracy": ">= 0.95"}
    assert plan_exit(run_cli, root) == 0

    edit(root / "mlproject.yaml", 'accuracy: ">= 0.95"', 'accuracy: "> 1"')
    plan = run_cli(root, "plan")
    assert line("*", "models.species", "gate accuracy >= 0.95 → > 1: re-checked, fails: accuracy = 1.0000") \
        in plan.stdout
    result, ran = build(run_cli, root)
    assert (result.exit_code, ran) == (1, {"models.species": "failed"})  # judged, not trained
    assert re.search(r"FAILED models\.species: gate accuracy > 1 failed: accuracy = 1\.0000 \(judged on the "
                     r"recorded metrics\)", result.stderr)
    assert read_lock(root).nodes["models.species"].gates == {"accuracy": ">= 0.95"}
    assert tree(root / "build") == model
    assert plan_exit(run_cli, root) == 2
    assert states(run_cli, root)["models.species"] == "failed"
