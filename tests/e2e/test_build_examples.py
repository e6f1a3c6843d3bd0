"""`mlmake build` on copies of examples/penguins and examples/churn, through the CLI.

Each test copies an example into tmp_path and builds it for real (polars, xgboost, the
churn generator and report scripts). What ran is read back from `mlmake runs --json`: a
build adds one run record per node it ran, so the records a build added are the nodes it ran.

The examples grow (deploy targets were added under these tests), so the nodes a change must
rebuild are computed from the project's graph: the changed node and everything downstream of it.
The nodes the tests are about are named outright.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from mlmake.state.lock import read_lock
from tests.helpers import build, run_records
from tests.helpers import copy_example as copy_clean

REPO = Path(__file__).resolve().parents[2]
RunCli = Callable[..., Result]

PENGUINS = ("datasets.penguins", "features.penguin_features", "models.species")
CHURN = ("steps.generate", "datasets.customers", "datasets.events", "features.customer_features",
         "models.churn_xgb", "steps.report")
NOTHING = "Nothing to build: every node is up to date.\n"


def copy_example(name: str, tmp_path: Path) -> Path:
    dest = tmp_path / name
    copy_clean(name, dest)
    return dest


def started(stdout: str) -> list[str]:
    """The `node  (reasons)` of each `[i/n] node  (reasons)` line of a build's output."""
    return [line.split("] ", 1)[1] for line in stdout.splitlines() if line.startswith("[")]


def nodes(root: Path) -> list[str]:
    """Every node of the project, in build order."""
    from tests.helpers import load

    return list(load(root)[1].nodes)


def downstream(root: Path, *addresses: str) -> list[str]:
    """The nodes and everything that reads them, in build order."""
    from tests.helpers import load

    graph = load(root)[1]
    below = graph.closure(addresses, down=True)
    return [a for a in graph.nodes if a in below]


def skipped(stdout: str) -> list[str]:
    return [line.strip() for line in stdout.splitlines() if line.startswith("  skip ")]


def tree(folder: Path) -> dict[str, str]:
    """Every file under folder → the sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def plan_exit(run_cli: RunCli, root: Path, *args: str) -> int:
    result = run_cli(root, "plan", "--detailed-exitcode", *args)
    assert result.exit_code in (0, 2), result.stderr
    return result.exit_code


def states(run_cli: RunCli, root: Path) -> dict[str, str]:
    result = run_cli(root, "status", "--json")
    assert result.exit_code == 0, result.stderr
    return {row["node"]: row["state"] for row in json.loads(result.stdout)}


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == count, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def edit_line(path: Path, number: int, old: str, new: str) -> None:
    """Replace old by new in line `number` (1-based) of a text file, keeping every other byte."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert old in lines[number - 1], lines[number - 1]
    lines[number - 1] = lines[number - 1].replace(old, new, 1)
    path.write_text("".join(lines), encoding="utf-8")


@pytest.fixture(scope="module")
def built_examples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each example built once; tests copy these instead of building from scratch again."""
    from tests.helpers import run_cli

    out = {}
    for name in ("penguins", "churn"):
        root = copy_example(name, tmp_path_factory.mktemp("built"))
        result = run_cli(root, "build")
        assert result.exit_code == 0, result.stderr
        out[name] = root
    return out


def built_copy(built_examples: dict[str, Path], name: str, tmp_path: Path) -> Path:
    dest = tmp_path / name
    shutil.copytree(built_examples[name], dest, symlinks=True)
    return dest


# --- a first build, then nothing to do ---------------------------------------------------------


@pytest.mark.parametrize(("example", "core"), [("penguins", PENGUINS), ("churn", CHURN)])
def test_an_example_builds_then_a_second_build_runs_nothing(run_cli: RunCli, tmp_path: Path, example: str,
                                                            core: tuple[str, ...]) -> None:
    root = copy_example(example, tmp_path)
    everything = nodes(root)
    assert set(core) <= set(everything)
    n = len(everything)
    result, ran = build(run_cli, root)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert started(result.stdout) == [f"{a}  (new node)" for a in everything]
    assert [ln.split()[1] for ln in result.stdout.splitlines() if re.match(r"  done \S+ in \d+\.\ds", ln)] == everything
    assert result.stdout.endswith(f"Build: {n} built, 0 up to date.\n")
    assert ran == dict.fromkeys(everything, "built")
    assert sorted(read_lock(root).nodes) == sorted(everything)
    lock_bytes = (root / "mlproject.lock").read_bytes()
    artifacts = tree(root / "build")

    again, ran = build(run_cli, root)
    assert (again.exit_code, again.stdout, again.stderr) == (0, f"{NOTHING}Build: 0 built, {n} up to date.\n", "")
    assert ran == {}
    assert (root / "mlproject.lock").read_bytes() == lock_bytes
    assert tree(root / "build") == artifacts
    assert plan_exit(run_cli, root) == 0
    assert set(states(run_cli, root).values()) == {"built"}


def test_penguins_trains_a_gated_multiclass_model_with_island_slices(built_examples: dict[str, Path]) -> None:
    model = built_examples["penguins"] / "build" / "models" / "species"
    assert {"metrics.json", "model.json", "predictions.parquet", "signature.json"} <= {p.name for p in model.iterdir()}
    booster = json.loads((model / "model.json").read_text(encoding="utf-8"))
    assert booster["learner"]["learner_model_param"]["num_class"] == "3"
    summary = json.loads((model / "metrics.json").read_text(encoding="utf-8"))
    assert sorted(summary["metrics"]) == ["accuracy", "f1", "mlogloss"]
    assert summary["metrics"]["accuracy"] >= 0.9
    assert "gates" not in summary  # judged by the build, recorded in the lock
    assert read_lock(built_examples["penguins"]).nodes["models.species"].gates == {"accuracy": ">= 0.9"}
    assert sorted(summary["slices"]["island"]) == ["Biscoe", "Dream", "Torgersen"]
    assert summary["n_train"] + summary["n_test"] == 342  # the two unmeasured penguins are filtered out
    # the lock records the slice metrics too: fairness gates are re-judged on them
    assert read_lock(built_examples["penguins"]).nodes["models.species"].metrics == {
        **summary["metrics"], "slices": summary["slices"]}


def test_churn_generates_data_trains_and_writes_its_report(built_examples: dict[str, Path]) -> None:
    root = built_examples["churn"]
    with open(root / "data" / "customers.csv", encoding="utf-8") as f:
        assert sum(1 for _ in f) == 1001  # header + params.rows
    summary = json.loads((root / "build" / "models" / "churn_xgb" / "metrics.json").read_text(encoding="utf-8"))
    assert sorted(summary["metrics"]) == ["accuracy", "auc", "f1", "logloss"]
    assert "gates" not in summary
    report = (root / "build" / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# Model report: churn_xgb\n")
    assert f"| auc | {summary['metrics']['auc']:.4f} |" in report
    assert "## By plan" in report


def test_a_real_first_build_prints_only_mlmake_lines(tmp_path: Path) -> None:
    # a real process: setting up DVC underneath once printed 'Initialized DVC repository.' here
    root = copy_example("penguins", tmp_path)
    done = subprocess.run([sys.executable, "-m", "mlmake", "-C", str(root), "build"], capture_output=True,
                          text=True, timeout=120)
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert [ln for ln in lines if not re.match(r"(\[\d+/\d+\] |  done |Build: )", ln)] == []


# --- what a change rebuilds ------------------------------------------------------------------


def test_a_param_override_rebuilds_only_the_model_and_what_reads_it(run_cli: RunCli,
                                                                   built_examples: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    root = built_copy(built_examples, "churn", tmp_path)
    rebuilt = downstream(root, "models.churn_xgb")
    assert "steps.report" in rebuilt
    data = tree(root / "build" / "features")
    result, ran = build(run_cli, root, "-P", "models.churn_xgb.params.max_depth=2")
    assert result.exit_code == 0, result.stderr
    assert ran == dict.fromkeys(rebuilt, "built")
    lines = started(result.stdout)
    assert lines[0] == "models.churn_xgb  (params.max_depth 3 → 2)"
    assert "steps.report  (upstream models.churn_xgb changed)" in lines
    assert len(lines) == len(rebuilt)
    assert result.stdout.endswith(f"Build: {len(rebuilt)} built, {len(nodes(root)) - len(rebuilt)} up to date.\n")
    assert tree(root / "build" / "features") == data
    assert read_lock(root).nodes["models.churn_xgb"].components.config["params"]["max_depth"] == 2
    assert plan_exit(run_cli, root, "-P", "models.churn_xgb.params.max_depth=2") == 0
    assert plan_exit(run_cli, root) == 2  # the file still says 3


def test_editing_a_model_param_in_the_file_retrains_that_model_alone(run_cli: RunCli,
                                                                     built_examples: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    root = built_copy(built_examples, "penguins", tmp_path)
    before = (root / "build" / "models" / "species" / "model.json").read_bytes()
    edit(root / "mlproject.yaml", "params: {max_depth: 3,", "params: {max_depth: 2,")
    result, ran = build(run_cli, root)
    assert result.exit_code == 0, result.stderr
    assert ran == dict.fromkeys(downstream(root, "models.species"), "built")
    assert started(result.stdout)[0] == "models.species  (params.max_depth 3 → 2)"
    assert "datasets.penguins" not in ran and "features.penguin_features" not in ran
    assert (root / "build" / "models" / "species" / "model.json").read_bytes() != before
    assert plan_exit(run_cli, root) == 0


def test_editing_the_raw_csv_rebuilds_dataset_features_and_model(run_cli: RunCli, built_examples: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    root = built_copy(built_examples, "penguins", tmp_path)
    rebuilt = downstream(root, "datasets.penguins")
    assert set(PENGUINS) <= set(rebuilt)
    csv_file = root / "data" / "penguins.csv"
    with open(csv_file, "a", encoding="utf-8") as f:  # one more penguin: every table and the split change
        f.write("Gentoo,Biscoe,47.5,15.0,218,4950,female,2009\n")
    result, ran = build(run_cli, root)
    assert result.exit_code == 0, result.stderr
    assert ran == dict.fromkeys(rebuilt, "built")
    assert started(result.stdout)[:3] == [
        "datasets.penguins  (data/penguins.csv changed)",
        "features.penguin_features  (upstream datasets.penguins changed: columns species, island, bill_length_mm "
        "and 4 more)",
        "models.species  (upstream features.penguin_features changed)"]
    assert json.loads((root / "build" / "datasets" / "penguins" / "contract.json").read_text())["rows"] == 345
    assert plan_exit(run_cli, root) == 0

    edit_line(csv_file, 2, ",3750,male,", ",3800,male,")  # a heavier penguin, still inside the contract
    result, ran = build(run_cli, root)
    assert result.exit_code == 0, result.stderr
    assert {a: ran.get(a) for a in PENGUINS} == dict.fromkeys(PENGUINS, "built")
    assert set(ran) <= set(rebuilt)  # past the model, what reads an unchanged model is cut off
    assert plan_exit(run_cli, root) == 0


def test_touching_the_csv_without_changing_it_rebuilds_nothing(run_cli: RunCli, built_examples: dict[str, Path],
                                                               tmp_path: Path) -> None:
    root = built_copy(built_examples, "penguins", tmp_path)
    csv_file = root / "data" / "penguins.csv"
    csv_file.write_bytes(csv_file.read_bytes())  # a new mtime, the same bytes
    result, ran = build(run_cli, root)
    assert (result.exit_code, ran) == (0, {})
    assert result.stdout.startswith(NOTHING)


# --- early cutoff ---------------------------------------------------------------------------


def test_a_csv_change_the_feature_sql_filters_out_stops_at_the_features(run_cli: RunCli,
                                                                        built_examples: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    root = built_copy(built_examples, "penguins", tmp_path)
    model = tree(root / "build" / "models")
    # line 5 is the penguin measured not at all: `WHERE bill_length_mm IS NOT NULL` drops it (its
    # island is a column the SQL reads; a change to `year`, which it does not read, would stop at
    # the dataset: tests/e2e/test_column_deps.py)
    edit_line(root / "data" / "penguins.csv", 5, "Adelie,Torgersen,,,,,,2007", "Adelie,Biscoe,,,,,,2007")
    result, ran = build(run_cli, root)
    assert result.exit_code == 0, result.stderr
    # the deploy targets rebuild: their manifests record every upstream fingerprint
    deploys = [a for a in nodes(root) if a.startswith("deploy.")]
    assert ran == {"datasets.penguins": "built", "features.penguin_features": "built",
                   **dict.fromkeys(deploys, "built")}
    cut = [a for a in downstream(root, "features.penguin_features")[1:] if a not in deploys]
    assert "models.species" in cut
    assert skipped(result.stdout) == [f"skip {a}: up to date (upstream output unchanged)" for a in cut]
    built = 2 + len(deploys)
    assert result.stdout.endswith(f"Build: {built} built, {len(nodes(root)) - built} up to date.\n")
    assert tree(root / "build" / "models") == model
    assert plan_exit(run_cli, root) == 0


def test_a_generator_change_that_writes_the_same_data_stops_at_the_generator(run_cli: RunCli,
                                                                            built_examples: dict[str, Path],
                                                                            tmp_path: Path) -> None:
    root = built_copy(built_examples, "churn", tmp_path)
    artifacts = tree(root / "build")
    with open(root / "scripts" / "generate.py", "a", encoding="utf-8") as f:
        f.write("UNUSED = 1  # changes the code (a comment alone would not), not the data it writes\n")
    result, ran = build(run_cli, root)
    assert result.exit_code == 0, result.stderr
    # the deploy targets rebuild: their manifests record every upstream fingerprint
    deploys = [a for a in nodes(root) if a.startswith("deploy.")]
    assert ran == {"steps.generate": "built", **dict.fromkeys(deploys, "built")}
    assert started(result.stdout)[0] == "steps.generate  (code scripts/generate.py changed)"
    rest = [a for a in downstream(root, "steps.generate")[1:] if a not in deploys]
    assert set(CHURN[1:]) <= set(rest)
    assert skipped(result.stdout) == [f"skip {a}: up to date (upstream output unchanged)" for a in rest]
    built = 1 + len(deploys)
    assert result.stdout.endswith(f"Build: {built} built, {len(nodes(root)) - built} up to date.\n")
    assert {p: h for p, h in tree(root / "build").items() if not p.startswith("deploy/")} == {
        p: h for p, h in artifacts.items() if not p.startswith("deploy/")}
    assert plan_exit(run_cli, root) == 0


# --- a broken data contract -----------------------------------------------------------------


def test_a_contract_violation_fails_the_dataset_and_keeps_the_last_build(run_cli: RunCli,
                                                                         built_examples: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    root = built_copy(built_examples, "penguins", tmp_path)
    below = downstream(root, "datasets.penguins")[1:]
    artifacts, lock_bytes = tree(root / "build"), (root / "mlproject.lock").read_bytes()
    csv_file = root / "data" / "penguins.csv"
    edit_line(csv_file, 2, "Adelie,Torgersen,", "Adelie,Atlantis,")
    edit_line(csv_file, 3, "Adelie,Torgersen,", "Adelie,Atlantis,")
    result, ran = build(run_cli, root)
    assert result.exit_code == 1
    assert result.stdout == (
        f"[1/{len(below) + 1}] datasets.penguins  (data/penguins.csv changed)\n"
        + "".join(f"  skip {a}: upstream datasets.penguins failed\n" for a in below)
        + f"Build: 0 built, 0 up to date, 1 failed, {len(below)} not run.\n")
    lines = result.stderr.splitlines()
    assert lines[:2] == [
        "FAILED datasets.penguins: 'data/penguins.csv' breaks its contract (1 problem):",
        "  column 'island': rule allowed ['Biscoe', 'Dream', 'Torgersen']: 2 bad rows, e.g. ['Atlantis', 'Atlantis']"]
    assert lines[-1] == "error: 1 node(s) failed: datasets.penguins"
    assert ran == {"datasets.penguins": "failed"}
    assert tree(root / "build") == artifacts
    assert (root / "mlproject.lock").read_bytes() == lock_bytes
    assert states(run_cli, root) == {"datasets.penguins": "failed", **dict.fromkeys(below, "stale")}
    record = run_records(run_cli, root)[0]
    assert record["node"] == "datasets.penguins" and "column 'island'" in record["message"]


def test_a_tighter_contract_names_the_node_column_rule_and_bad_rows(run_cli: RunCli,
                                                                     built_examples: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    root = built_copy(built_examples, "churn", tmp_path)
    artifacts, lock_bytes = tree(root / "build"), (root / "mlproject.lock").read_bytes()
    with open(root / "data" / "customers.csv", encoding="utf-8") as f:
        ages = [int(row["age"]) for row in csv.DictReader(f)]
    too_old = [a for a in ages if a > 60]
    result, ran = build(run_cli, root, "-P", "datasets.customers.schema.age.max=60")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:2] == [
        "FAILED datasets.customers: 'data/customers.csv' breaks its contract (1 problem):",
        f"  column 'age': rule max 60: {len(too_old)} bad rows, e.g. {too_old[:5]}"]
    below = downstream(root, "datasets.customers")[1:]
    assert skipped(result.stdout) == [f"skip {a}: upstream datasets.customers failed" for a in below]
    assert ran == {"datasets.customers": "failed"}
    assert tree(root / "build") == artifacts
    assert (root / "mlproject.lock").read_bytes() == lock_bytes


# --- quality gates -----------------------------------------------------------------------------


def test_a_failed_gate_on_a_first_build_records_nothing_and_keeps_the_outputs(run_cli: RunCli,
                                                                              tmp_path: Path) -> None:
    root = copy_example("penguins", tmp_path)
    below = downstream(root, "models.species")[1:]
    edit(root / "mlproject.yaml", 'accuracy: ">= 0.9"', 'accuracy: ">= 1.01"')
    result, ran = build(run_cli, root)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:2] == [
        "FAILED models.species: gate accuracy >= 1.01 failed: accuracy = 1.0000",
        "(outputs kept for inspection in .mlmake/failed/models.species)"]
    assert result.stderr.endswith("error: 1 node(s) failed: models.species\n")
    assert skipped(result.stdout) == [f"skip {a}: upstream models.species failed" for a in below]
    assert ran == {"datasets.penguins": "built", "features.penguin_features": "built", "models.species": "failed"}
    assert sorted(read_lock(root).nodes) == ["datasets.penguins", "features.penguin_features"]
    assert not (root / "build" / "models").exists()
    kept = {p.name: p for p in (root / ".mlmake" / "failed" / "models.species").rglob("*") if p.is_file()}
    assert {"model.json", "metrics.json", "predictions.parquet"} <= set(kept)
    summary = json.loads(kept["metrics.json"].read_text(encoding="utf-8"))
    assert "gates" not in summary and summary["metrics"]["accuracy"] == 1.0  # the build judged them
    assert states(run_cli, root)["models.species"] == "failed"

    edit(root / "mlproject.yaml", 'accuracy: ">= 1.01"', 'accuracy: ">= 0.9"')
    result, ran = build(run_cli, root)
    assert (result.exit_code, ran) == (0, dict.fromkeys(downstream(root, "models.species"), "built")), result.stderr
    assert plan_exit(run_cli, root) == 0


def test_a_failed_gate_on_a_rebuild_keeps_the_previous_model(run_cli: RunCli, built_examples: dict[str, Path],
                                                             tmp_path: Path) -> None:
    root = built_copy(built_examples, "churn", tmp_path)
    artifacts, lock_bytes = tree(root / "build"), (root / "mlproject.lock").read_bytes()
    auc = read_lock(root).nodes["models.churn_xgb"].metrics["auc"]
    result, ran = build(run_cli, root, "-P", "models.churn_xgb.gates.auc=>= 0.99")
    assert result.exit_code == 1
    # gates are not fingerprinted: the recorded metrics are judged again, nothing retrains
    assert result.stderr.splitlines()[0] == (f"FAILED models.churn_xgb: gate auc >= 0.99 failed: auc = {auc:.4f} "
                                             "(judged on the recorded metrics)")
    assert skipped(result.stdout) == []  # the model is unchanged: what reads it stays up to date
    assert "Build: 0 built, " in result.stdout and ", 1 failed." in result.stdout
    assert ran == {"models.churn_xgb": "failed"}
    assert tree(root / "build") == artifacts
    assert (root / "mlproject.lock").read_bytes() == lock_bytes
    failed = run_records(run_cli, root)[0]
    # the run keeps the metrics its gate judged (the lock keeps the previous model's: the same model)
    assert (failed["node"], failed["status"]) == ("models.churn_xgb", "failed")
    assert failed["metrics"] == read_lock(root).nodes["models.churn_xgb"].metrics
    assert failed["message"].startswith("gate auc >= 0.99 failed")


def test_a_failed_gate_shows_a_value_that_visibly_breaks_the_threshold(run_cli: RunCli,
                                                                       built_examples: dict[str, Path],
                                                                       tmp_path: Path) -> None:
    root = built_copy(built_examples, "penguins", tmp_path)
    loss = read_lock(root).nodes["models.species"].metrics["mlogloss"]  # about 0.004
    threshold = f"{loss * 0.999:.6g}"
    result, _ = build(run_cli, root, "-P", f"models.species.gates.mlogloss=<= {threshold}")
    assert result.exit_code == 1
    first = result.stderr.splitlines()[0]
    match = re.fullmatch(rf"FAILED models\.species: gate mlogloss <= {re.escape(threshold)} failed: "
                         r"mlogloss = (\S+) \(judged on the recorded metrics\)", first)
    assert match, first
    assert float(match.group(1)) > float(threshold), first  # once 'mlogloss = 0.0040' (4 decimals)
