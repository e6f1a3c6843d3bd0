"""`mlmake build` options through the CLI: --keep-going, -j, targets, --downstream, --force,
and what `mlmake status` and `mlmake runs` say afterwards.

The projects are examples/penguins without its deploy targets (so the node lists here are
exact) and with a node added: a second model on the same feature set, or an independent
dataset, declared first, that breaks its contract.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from mlmake.state.lock import read_lock
from tests.helpers import build, run_records
from tests.helpers import copy_example as copy_clean

REPO = Path(__file__).resolve().parents[2]
RunCli = Callable[..., Result]

PENGUINS = ("datasets.penguins", "features.penguin_features", "models.species")
NOTHING = "Nothing to build: every node is up to date.\n"

SECOND_MODEL = {
    "features": "penguin_features", "target": "species", "task": "multiclass",
    "split": {"test_size": 0.3, "seed": 7, "stratify": True},
    "params": {"max_depth": 6, "eta": 0.3, "num_boost_round": 60, "seed": 7},
    "metrics": ["accuracy", "mlogloss"],
}
BROKEN_DATASET = {"path": "data/broken.csv", "schema": {"x": {"type": "int64", "max": 5}}}


def copy_example(name: str, tmp_path: Path) -> Path:
    dest = tmp_path / name
    copy_clean(name, dest)
    return dest


def penguins(tmp_path: Path, change: Callable[[Any], None] = lambda spec: None) -> Path:
    """A copy of examples/penguins without deploy targets, its mlproject.yaml changed by `change`."""
    from ruamel.yaml import YAML

    root = copy_example("penguins", tmp_path)
    yaml, path = YAML(), root / "mlproject.yaml"
    spec = yaml.load(path.read_text(encoding="utf-8"))
    spec.pop("deploy", None)
    change(spec)
    with open(path, "w", encoding="utf-8") as f:
        yaml.dump(spec, f)
    return root


def two_models(tmp_path: Path) -> Path:
    """penguins with a second, independent model on the same feature set."""
    return penguins(tmp_path, lambda spec: spec["models"].update(species_deep=SECOND_MODEL))


def with_broken_branch(tmp_path: Path) -> Path:
    """penguins plus a dataset, declared first, whose data breaks its contract."""
    root = penguins(tmp_path, lambda spec: spec["datasets"].insert(0, "broken", BROKEN_DATASET))
    (root / "data" / "broken.csv").write_text("x\n1\n9\n", encoding="utf-8")
    return root


def started(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("[")]


def plan_exit(run_cli: RunCli, root: Path, *args: str) -> int:
    result = run_cli(root, "plan", "--detailed-exitcode", *args)
    assert result.exit_code in (0, 2), result.stderr
    return result.exit_code


def states(run_cli: RunCli, root: Path, *args: str) -> dict[str, str]:
    result = run_cli(root, "status", "--json", *args)
    assert result.exit_code == 0, result.stderr
    return {row["node"]: row["state"] for row in json.loads(result.stdout)}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- --keep-going ------------------------------------------------------------------------------


def test_without_keep_going_the_first_failure_stops_the_build(run_cli: RunCli, tmp_path: Path) -> None:
    root = with_broken_branch(tmp_path)
    result, ran = build(run_cli, root)
    assert result.exit_code == 1
    assert result.stdout == (
        "[1/4] datasets.broken  (new node)\n"
        "  skip datasets.penguins: the build stopped\n"
        "  skip features.penguin_features: the build stopped\n"
        "  skip models.species: the build stopped\n"
        "Build: 0 built, 0 up to date, 1 failed, 3 not run.\n")
    assert result.stderr.splitlines()[:2] == [
        "FAILED datasets.broken: 'data/broken.csv' breaks its contract (1 problem):",
        "  column 'x': rule max 5: 1 bad row, e.g. [9]"]
    assert result.stderr.endswith("error: 1 node(s) failed: datasets.broken\n")
    assert ran == {"datasets.broken": "failed"}
    assert read_lock(root).nodes == {}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_keep_going_builds_the_independent_branch_and_still_exits_1(run_cli: RunCli, tmp_path: Path,
                                                                    jobs: str) -> None:
    root = with_broken_branch(tmp_path)
    result, ran = build(run_cli, root, "--keep-going", "-j", jobs)
    assert result.exit_code == 1
    assert result.stderr.startswith("FAILED datasets.broken: ")
    assert result.stderr.endswith("error: 1 node(s) failed: datasets.broken\n")
    assert result.stdout.endswith("Build: 3 built, 0 up to date, 1 failed.\n")
    assert ran == {"datasets.broken": "failed", **dict.fromkeys(PENGUINS, "built")}
    assert sorted(read_lock(root).nodes) == sorted(PENGUINS)
    assert (root / "build" / "models" / "species" / "model.json").is_file()
    assert states(run_cli, root) == {"datasets.broken": "failed", **dict.fromkeys(PENGUINS, "built")}

    (root / "data" / "broken.csv").write_text("x\n1\n2\n", encoding="utf-8")  # fixed: only it builds now
    result, ran = build(run_cli, root, "-k", "-j", jobs)
    assert (result.exit_code, ran) == (0, {"datasets.broken": "built"}), result.stderr
    assert plan_exit(run_cli, root) == 0


# --- -j 2 -----------------------------------------------------------------------------------


def test_two_jobs_build_both_models_and_match_one_job_byte_for_byte(run_cli: RunCli, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = two_models(tmp_path / "one"), two_models(tmp_path / "two")
    serial, ran_serial = build(run_cli, one, "-j", "1")
    monkeypatch.setenv("MLMAKE_REMOTE", str(tmp_path / "remote-two"))  # or two restores what one built
    parallel, ran_parallel = build(run_cli, two, "-j", "2")
    for result in (serial, parallel):
        assert result.exit_code == 0, result.stderr
        assert result.stdout.endswith("Build: 4 built, 0 up to date.\n")
    assert ran_serial == ran_parallel == dict.fromkeys((*PENGUINS, "models.species_deep"), "built")
    lines = parallel.stdout.splitlines()
    # both models were handed to the pool before either finished
    first_done = min(i for i, ln in enumerate(lines) if ln.startswith("  done models."))
    assert sum(1 for ln in lines[:first_done] if re.match(r"\[\d/4\] models\.", ln)) == 2
    for model in ("species", "species_deep"):
        for name in ("model.json", "metrics.json", "predictions.parquet"):
            rel = Path("build", "models", model, name)
            assert sha(one / rel) == sha(two / rel), rel
    assert (one / "mlproject.lock").read_bytes() == (two / "mlproject.lock").read_bytes()
    again, ran = build(run_cli, two, "-j", "2")
    assert (again.exit_code, ran) == (0, {})
    assert again.stdout.startswith(NOTHING)


def test_two_jobs_number_each_started_node_once(run_cli: RunCli, tmp_path: Path) -> None:
    root = two_models(tmp_path)
    result = run_cli(root, "build", "-j", "2")
    assert result.exit_code == 0, result.stderr
    numbers = [line.split("]")[0] + "]" for line in started(result.stdout)]
    assert numbers == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]  # once [3/4] twice: numbered by nodes finished


# --- targets, --downstream, --force ------------------------------------------------------------


def test_a_target_builds_what_it_needs_and_nothing_downstream(run_cli: RunCli, tmp_path: Path) -> None:
    root = penguins(tmp_path)
    result, ran = build(run_cli, root, "features.penguin_features")
    assert result.exit_code == 0, result.stderr
    assert started(result.stdout) == ["[1/2] datasets.penguins  (new node)",
                                      "[2/2] features.penguin_features  (new node)"]
    assert ran == {"datasets.penguins": "built", "features.penguin_features": "built"}
    assert sorted(read_lock(root).nodes) == ["datasets.penguins", "features.penguin_features"]
    assert not (root / "build" / "models").exists()
    assert plan_exit(run_cli, root, "features.penguin_features") == 0
    assert plan_exit(run_cli, root) == 2

    result, ran = build(run_cli, root, "species")  # a bare name when it is unique
    assert (result.exit_code, ran) == (0, {"models.species": "built"}), result.stderr
    assert plan_exit(run_cli, root) == 0


def test_an_unknown_target_is_refused_with_a_suggestion(run_cli: RunCli, tmp_path: Path) -> None:
    root = penguins(tmp_path)
    result = run_cli(root, "build", "specie")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: unknown target 'specie' (did you mean 'species'?)\n"
    assert not (root / "mlproject.lock").exists()


def test_downstream_builds_what_reads_the_target(run_cli: RunCli, tmp_path: Path) -> None:
    root = penguins(tmp_path)
    assert run_cli(root, "build").exit_code == 0
    csv_file = root / "data" / "penguins.csv"
    csv_file.write_text(csv_file.read_text(encoding="utf-8").replace(",3750,male,", ",3800,male,", 1),
                        encoding="utf-8")

    result, ran = build(run_cli, root, "datasets.penguins")
    assert (result.exit_code, ran) == (0, {"datasets.penguins": "built"}), result.stderr
    assert states(run_cli, root) == {"datasets.penguins": "built", "features.penguin_features": "stale",
                                     "models.species": "stale"}

    result, ran = build(run_cli, root, "--downstream", "datasets.penguins")
    assert result.exit_code == 0, result.stderr
    assert started(result.stdout) == [
        "[1/2] features.penguin_features  (upstream datasets.penguins changed: column body_mass_g)",
        "[2/2] models.species  (upstream features.penguin_features changed)"]
    assert ran == {"features.penguin_features": "built", "models.species": "built"}
    assert plan_exit(run_cli, root) == 0


def test_force_rebuilds_up_to_date_nodes_to_the_same_bytes(run_cli: RunCli, tmp_path: Path) -> None:
    root = penguins(tmp_path)
    assert run_cli(root, "build").exit_code == 0
    model = root / "build" / "models" / "species" / "model.json"
    before, lock_bytes = sha(model), (root / "mlproject.lock").read_bytes()

    result, ran = build(run_cli, root, "--force")
    assert result.exit_code == 0, result.stderr
    assert started(result.stdout) == [f"[{i}/3] {a}  (forced)" for i, a in enumerate(PENGUINS, 1)]
    assert ran == dict.fromkeys(PENGUINS, "built")
    assert sha(model) == before
    assert (root / "mlproject.lock").read_bytes() == lock_bytes

    result, ran = build(run_cli, root, "--force", "models.species")  # the target, not what it reads
    assert result.exit_code == 0, result.stderr
    assert started(result.stdout) == ["[1/1] models.species  (forced)"]
    assert ran == {"models.species": "built"}
    assert result.stdout.endswith("Build: 1 built, 2 up to date.\n")
    assert plan_exit(run_cli, root) == 0


# --- status and runs -------------------------------------------------------------------------


def test_status_and_runs_follow_the_builds(run_cli: RunCli, tmp_path: Path) -> None:
    root = penguins(tmp_path)
    assert run_cli(root, "runs").stdout == "no runs recorded yet (run `mlmake build`)\n"
    status = run_cli(root, "status")
    assert [ln.split() for ln in status.stdout.splitlines()] == [
        ["stale", a, "new", "node"] for a in PENGUINS]

    assert run_cli(root, "build").exit_code == 0
    assert states(run_cli, root) == dict.fromkeys(PENGUINS, "built")
    text = run_cli(root, "runs").stdout.splitlines()
    assert [ln.split()[3:5] for ln in text] == [["built", a] for a in reversed(PENGUINS)]  # newest first
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  \S+  built +models\.species +\d+\.\d\ds  "
                        r"accuracy=1, f1=1, mlogloss=0\.00\d+", text[0]), text[0]

    override = "models.species.params.max_depth=2"
    assert states(run_cli, root, "-P", override)["models.species"] == "stale"
    result, ran = build(run_cli, root, "-P", override)
    assert (result.exit_code, ran) == (0, {"models.species": "built"})
    (record,) = run_records(run_cli, root, "--node", "models.species", "--limit", "1")
    assert record["params"] == {"eta": 0.1, "max_depth": 2, "num_boost_round": 100, "seed": 42}
    assert record["reasons"] == ["params.max_depth 3 → 2"]
    assert record["overrides"] == [override]
    assert (record["status"], record["kind"], record["message"]) == ("built", "model", "")
    assert record["metrics"] == read_lock(root).nodes["models.species"].metrics
    assert len(run_records(run_cli, root, "--node", "models.species")) == 2

    shutil.rmtree(root / "build" / "features")
    assert states(run_cli, root, "-P", override) == {
        "datasets.penguins": "built", "features.penguin_features": "missing", "models.species": "built"}
    result, ran = build(run_cli, root, "-P", override)  # the DVC cache still has it
    assert (result.exit_code, ran) == (0, {"features.penguin_features": "restored"})
    (line,) = started(result.stdout)
    assert re.fullmatch(r"\[1/\d\] features\.penguin_features  restored from the cache in \d+\.\ds", line), line
    assert result.stdout.endswith("Build: 0 built, 1 restored from cache, 2 up to date.\n")
    assert states(run_cli, root, "-P", override) == dict.fromkeys(PENGUINS, "built")

    failing = 'models.species.gates.accuracy=>= 1.01'
    assert run_cli(root, "build", "-P", failing).exit_code == 1
    assert states(run_cli, root, "-P", failing) == {
        "datasets.penguins": "built", "features.penguin_features": "built", "models.species": "failed"}
    last = run_records(run_cli, root, "--limit", "1")[0]
    assert (last["node"], last["status"]) == ("models.species", "failed")
    assert "gate accuracy >= 1.01 failed: accuracy = 1.0000" in last["message"]
    # gates are not fingerprinted: the model built before is restored and judged, not retrained,
    # and the failed run keeps the metrics the gate judged
    assert re.search(r"  failed +models\.species +\d+\.\d\ds  accuracy=1, f1=1, mlogloss=0\.00\d+$",
                     run_cli(root, "runs", "--limit", "1").stdout)


def test_an_input_changed_while_the_node_ran_is_not_recorded(run_cli: RunCli, make_project: Any) -> None:
    # the command rewrites a file it depends on, as a concurrent edit would
    root = make_project({
        "mlproject.yaml": "version: 1\nproject: racy\nsteps:\n  s:\n    cmd: [python, edit.py]\n"
                          "    deps: [edit.py, data/x.csv]\n    outs: [out.txt]\n",
        "edit.py": "import pathlib\np = pathlib.Path('data/x.csv')\np.write_text(p.read_text() + '2\\n')\n"
                   "pathlib.Path('out.txt').write_text('done')\n",
        "data/x.csv": "x\n1\n",
    })
    result = run_cli(root, "build")
    assert result.exit_code == 1
    assert "FAILED steps.s: an input changed while the node ran; not recorded as built" in result.stderr
    lock = root / "mlproject.lock"
    assert not lock.exists() or "steps.s" not in lock.read_text()


def test_a_dvc_cache_that_cannot_be_written_warns_and_the_build_stands(run_cli: RunCli, tmp_path: Path) -> None:
    root = penguins(tmp_path)
    assert run_cli(root, "build", "datasets.penguins").exit_code == 0
    pointer = root / ".mlmake-artifacts" / "datasets.penguins.dvc"
    stored = pointer.read_text(encoding="utf-8")
    shutil.rmtree(root / ".dvc" / "cache")
    (root / ".dvc" / "cache").write_text("not a folder\n", encoding="utf-8")  # every write into it fails

    result, ran = build(run_cli, root)
    assert result.exit_code == 0, result.stderr
    assert ran == {"features.penguin_features": "built", "models.species": "built"}
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert [w.split(":")[1].strip() for w in warnings] == ["features.penguin_features", "models.species"]
    assert all(": built, but not stored in the DVC cache: cannot put build/" in w and "Not a directory" in w
               for w in warnings), warnings
    assert result.stdout.endswith("Build: 2 built, 1 up to date.\n")
    assert run_cli(root, "plan", "--detailed-exitcode").exit_code == 0  # what was built is recorded
    assert pointer.read_text(encoding="utf-8") == stored  # the earlier node's pointer is untouched
