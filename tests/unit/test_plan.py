"""mlmake/plan.py: every decision and its reasons, in exact words."""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mlmake.core.errors import MlmakeError
from mlmake.planning.plan import (
    ABSENT,
    BUILD,
    CHECK,
    FRESH,
    MAYBE,
    NEW,
    REMOVE,
    RESTORE,
    Decision,
    Plan,
    Reason,
    make_plan,
)
from mlmake.state import hashing as fingerprint
from mlmake.state.lock import read_lock
from tests.fakes import FakeClock, FakeFiles, FakeRunner, actions, load, plan_of, reasons, record_build
from tests.helpers import drop_caches

MakeProject = Callable[[dict[str, str | bytes]], Path]

# a → b → c by address and by path; d on its own; a reads a script, a data file and a param
STEPS = """\
version: 1
project: demo
params:
  depth: 6
steps:
  a:
    cmd: [python, scripts/a.py, "${params.depth}"]
    deps: [scripts/a.py, data/x.csv]
    outs: [build/a.txt]
  b:
    cmd: [python, -c, pass]
    deps: [steps.a]
    outs: [build/b.txt]
  c:
    cmd: [python, -c, pass]
    deps: [build/b.txt]
    outs: [build/c.txt]
  d:
    cmd: [python, -c, pass]
    deps: [data/y.csv]
    outs: [build/d.txt]
"""
STEP_FILES: dict[str, str | bytes] = {"mlproject.yaml": STEPS, "scripts/a.py": "print(1)\n",
                                      "data/x.csv": "x\n1\n", "data/y.csv": "y\n1\n"}

# the heavy kinds, declared only: FakeRunner builds them
MODEL = """\
version: 1
project: demo
params:
  seed: 42
datasets:
  customers:
    path: data/customers.csv
features:
  cf:
    from: customers
    sql: SELECT * FROM customers
models:
  churn:
    features: cf
    target: churned
    task: binary
    split: {seed: "${params.seed}"}
    params: {max_depth: 6}
steps:
  report:
    cmd: [python, -c, pass]
    deps: [models.churn]
    outs: [build/report.txt]
"""
MODEL_FILES: dict[str, str | bytes] = {"mlproject.yaml": MODEL, "data/customers.csv": "id,churned\n1,true\n"}
PENDING_CF = "upstream features.cf will rebuild; rebuilds only if its output changes"


@pytest.fixture
def steps(make_project: MakeProject) -> Path:
    """The STEPS project, built."""
    root = make_project(STEP_FILES)
    record_build(root)
    return root


@pytest.fixture
def model(make_project: MakeProject) -> Path:
    """The MODEL project, built."""
    root = make_project(MODEL_FILES)
    record_build(root)
    return root


def edit(root: Path, old: str, new: str) -> None:
    text = (root / "mlproject.yaml").read_text()
    assert old in text, old
    (root / "mlproject.yaml").write_text(text.replace(old, new, 1))


# --- new, fresh ------------------------------------------------------------------------


def test_a_project_never_built_is_all_new(make_project: MakeProject) -> None:
    plan = plan_of(make_project(STEP_FILES))
    assert [(s.address, s.action) for s in plan.steps] == [
        ("steps.a", NEW), ("steps.b", NEW), ("steps.c", NEW), ("steps.d", NEW)]
    assert all([r.text() for r in s.reasons] == ["new node"] for s in plan.steps)
    assert plan.has_changes
    assert plan.summary() == "Plan: 4 to build, 0 up to date."


def test_after_a_build_nothing_is_stale(make_project: MakeProject) -> None:
    root = make_project(STEP_FILES)
    built = record_build(root)
    assert sorted(built.runner.ran) == ["steps.a", "steps.b", "steps.c", "steps.d"]
    plan = plan_of(root)
    assert set(actions(plan).values()) == {FRESH}
    assert not plan.has_changes
    assert plan.summary() == "Plan: 0 to build, 4 up to date."
    assert record_build(root).runner.ran == []


def test_a_new_node_is_new_and_the_rest_stays_fresh(steps: Path) -> None:
    edit(steps, "  d:\n", "  e:\n    cmd: [python, -c, pass]\n    deps: [steps.d]\n    outs: [build/e.txt]\n  d:\n")
    plan = plan_of(steps)
    assert reasons(plan) == {"steps.e": ["new node"]}
    assert actions(plan)["steps.e"] == NEW


def test_touching_every_file_changes_nothing(steps: Path) -> None:
    clock = FakeClock()
    for path in steps.rglob("*"):
        if path.is_file() and ".mlmake" not in path.parts:
            clock.touch(path)
    assert not plan_of(steps).has_changes


# --- configuration ---------------------------------------------------------------------


def test_a_changed_param_names_the_key_and_both_values(model: Path) -> None:
    edit(model, "max_depth: 6", "max_depth: 8")
    plan = plan_of(model)
    assert reasons(plan) == {
        "models.churn": ["params.max_depth 6 → 8"],
        "steps.report": ["upstream models.churn will rebuild; rebuilds only if its output changes"],
    }
    assert actions(plan) == {"datasets.customers": FRESH, "features.cf": FRESH, "models.churn": BUILD,
                             "steps.report": MAYBE}
    step = next(s for s in plan.steps if s.address == "models.churn")
    assert step.reasons == (Reason("config", "params.max_depth", 6, 8),)


def test_a_command_line_override_plans_like_an_edit(model: Path) -> None:
    plan = plan_of(model, params=["models.churn.params.max_depth=8"])
    assert reasons(plan)["models.churn"] == ["params.max_depth 6 → 8"]
    # a global param names itself, not every key it was interpolated into
    plan = plan_of(model, params=["seed=7"])
    assert reasons(plan)["models.churn"] == ["params.seed 42 → 7"]
    assert next(s for s in plan.steps if s.address == "models.churn").reasons == (
        Reason("param", "params.seed", 42, 7),)


def test_added_removed_and_retyped_keys(model: Path) -> None:
    edit(model, "{max_depth: 6}", "{max_depth: 6, eta: 0.1}")
    assert reasons(plan_of(model))["models.churn"] == ["params.eta added (0.1)"]
    edit(model, "{max_depth: 6, eta: 0.1}", "{}")
    assert reasons(plan_of(model))["models.churn"] == ["params.max_depth removed (was 6)"]
    edit(model, "{}", "{max_depth: 6.0}")
    assert reasons(plan_of(model))["models.churn"] == ["params.max_depth 6 → 6.0"]


def test_a_param_in_a_command_is_named(steps: Path) -> None:
    edit(steps, "depth: 6", "depth: 8")
    plan = plan_of(steps)
    assert reasons(plan) == {
        "steps.a": ["params.depth 6 → 8"],
        "steps.b": ["upstream steps.a will rebuild; rebuilds only if its output changes"],
        "steps.c": ["upstream steps.b will rebuild; rebuilds only if its output changes"],
    }


def test_a_command_edit_shows_the_command_before_and_after(steps: Path) -> None:
    edit(steps, "cmd: [python, scripts/a.py,", "cmd: [python, -u, scripts/a.py,")
    assert reasons(plan_of(steps))["steps.a"] == [
        'cmd ["python", "scripts/a.py", "6"] → ["python", "-u", "scripts/a.py", "6"]']


def test_a_param_and_an_edit_of_the_same_command_are_both_named(steps: Path) -> None:
    edit(steps, "depth: 6", "depth: 8")
    edit(steps, "cmd: [python, scripts/a.py,", "cmd: [python, -u, scripts/a.py,")
    assert reasons(plan_of(steps))["steps.a"] == [
        "params.depth 6 → 8", 'cmd ["python", "scripts/a.py", "6"] → ["python", "-u", "scripts/a.py", "8"]']


def test_a_description_is_not_fingerprinted(model: Path) -> None:
    edit(model, "    target: churned\n", "    target: churned\n    description: who leaves\n")
    assert not plan_of(model).has_changes


def test_a_nan_param_is_not_stale_after_a_build(make_project: MakeProject) -> None:
    # xgboost's `missing: .nan`: NaN != NaN once made this node stale forever
    root = make_project({**MODEL_FILES, "mlproject.yaml": MODEL.replace("{max_depth: 6}", "{extra: {missing: .nan}}")})
    record_build(root)
    assert reasons(plan_of(root)) == {}


def test_a_recipe_bump_rebuilds_the_kind(steps: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlmake.kinds import cmd

    monkeypatch.setattr(type(cmd.KIND), "recipe", 2)
    plan = plan_of(steps)
    assert {s.address: s.reasons for s in plan.steps if s.action == BUILD} == {
        a: (Reason("recipe", "cmd", 1, 2),) for a in ("steps.a", "steps.b", "steps.c", "steps.d")}
    assert reasons(plan)["steps.a"] == ["recipe of cmd 1 → 2"]


def test_a_library_upgrade_rebuilds_what_uses_it(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    polars = fingerprint.library_version("polars")
    xgboost = fingerprint.library_version("xgboost")
    monkeypatch.setattr("mlmake.planning.plan.library_version", lambda name: "99.0" if name == "xgboost" else {
        "polars": polars}.get(name, "missing"))
    plan = plan_of(model)
    assert reasons(plan) == {"models.churn": [f"xgboost {xgboost} → 99.0"],
                             "steps.report": ["upstream models.churn will rebuild; rebuilds only if its output "
                                              "changes"]}


# --- inputs and code -------------------------------------------------------------------


def test_a_changed_data_file_names_the_file(model: Path) -> None:
    FakeClock().write(model / "data/customers.csv", "id,churned\n2,false\n")
    plan = plan_of(model)
    assert reasons(plan) == {
        "datasets.customers": ["data/customers.csv changed"],
        "features.cf": ["upstream datasets.customers will rebuild; rebuilds only if its output changes"],
        "models.churn": [PENDING_CF],
        "steps.report": ["upstream models.churn will rebuild; rebuilds only if its output changes"],
    }
    assert actions(plan) == {"datasets.customers": BUILD, "features.cf": MAYBE, "models.churn": MAYBE,
                             "steps.report": MAYBE}


def test_a_step_reads_its_file_deps_as_code(steps: Path) -> None:
    clock = FakeClock()
    clock.write(steps / "scripts/a.py", "print(2)\n")
    clock.write(steps / "data/y.csv", "y\n2\n")
    plan = plan_of(steps)
    assert reasons(plan) == {
        "steps.a": ["code scripts/a.py changed"],
        "steps.b": ["upstream steps.a will rebuild; rebuilds only if its output changes"],
        "steps.c": ["upstream steps.b will rebuild; rebuilds only if its output changes"],
        "steps.d": ["data/y.csv changed"],
    }


def test_missing_code_is_named(steps: Path) -> None:
    os.remove(steps / "scripts/a.py")
    assert reasons(plan_of(steps))["steps.a"] == ["code scripts/a.py is missing"]


def test_missing_data_is_named(model: Path) -> None:
    os.remove(model / "data/customers.csv")
    assert reasons(plan_of(model))["datasets.customers"] == ["data/customers.csv is missing"]


def test_a_moved_input_is_added_and_no_longer_read(model: Path) -> None:
    os.rename(model / "data/customers.csv", model / "data/c2.csv")
    edit(model, "path: data/customers.csv", "path: data/c2.csv")
    assert reasons(plan_of(model))["datasets.customers"] == [
        "path data/customers.csv → data/c2.csv", "data/c2.csv added", "data/customers.csv no longer read"]


def test_a_dvc_pointer_stands_for_absent_data(make_project: MakeProject) -> None:
    md5 = hashlib.md5(str(MODEL_FILES["data/customers.csv"]).encode()).hexdigest()  # the pointer agrees
    root = make_project({**MODEL_FILES, "data/customers.csv.dvc": f"outs:\n- md5: {md5}\n  size: 3\n  path: x\n"})
    record_build(root)
    os.remove(root / "data/customers.csv")
    assert not plan_of(root).has_changes
    FakeClock().write(root / "data/customers.csv.dvc", "outs:\n- md5: abd\n  size: 3\n  path: x\n")
    assert reasons(plan_of(root))["datasets.customers"] == ["data/customers.csv changed"]


# --- upstream --------------------------------------------------------------------------


def test_an_upstream_rebuilt_alone_makes_its_readers_stale(steps: Path) -> None:
    FakeClock().write(steps / "data/x.csv", "x\n2\n")
    assert record_build(steps, ["steps.a"]).runner.ran == ["steps.a"]
    plan = plan_of(steps)
    assert reasons(plan) == {
        "steps.b": ["upstream steps.a changed"],
        "steps.c": ["upstream steps.b will rebuild; rebuilds only if its output changes"],
    }


def test_a_maybe_node_waits_for_every_pending_upstream(make_project: MakeProject) -> None:
    root = make_project({**STEP_FILES, "mlproject.yaml": STEPS.replace("deps: [build/b.txt]",
                                                                       "deps: [build/b.txt, steps.d]")})
    record_build(root)
    clock = FakeClock()
    clock.write(root / "data/x.csv", "x\n2\n")
    clock.write(root / "data/y.csv", "y\n2\n")
    assert reasons(plan_of(root))["steps.c"] == [
        "upstream steps.b will rebuild; rebuilds only if its output changes",
        "upstream steps.d will rebuild; rebuilds only if its output changes"]


def test_an_own_change_outranks_a_pending_upstream(steps: Path) -> None:
    FakeClock().write(steps / "data/x.csv", "x\n2\n")
    edit(steps, "deps: [steps.a]", "deps: [steps.a, data/y.csv]")
    # a new file dep reads "added"; a data file is not called code
    assert reasons(plan_of(steps))["steps.b"] == [
        'deps ["steps.a"] → ["steps.a", "data/y.csv"]', "data/y.csv added"]


def test_a_new_or_dropped_upstream_is_named(steps: Path) -> None:
    edit(steps, "deps: [build/b.txt]", "deps: [build/b.txt, steps.d]")
    assert reasons(plan_of(steps))["steps.c"] == [
        'deps ["build/b.txt"] → ["build/b.txt", "steps.d"]', "now depends on steps.d"]
    edit(steps, "deps: [build/b.txt, steps.d]", "deps: [steps.d]")
    assert reasons(plan_of(steps))["steps.c"] == [
        'deps ["build/b.txt"] → ["steps.d"]', "no longer depends on steps.b", "now depends on steps.d"]


def test_early_cutoff_stops_at_identical_bytes(make_project: MakeProject) -> None:
    root = make_project(STEP_FILES)
    runner = FakeRunner(content={"steps.a": lambda task, out: b"always the same\n"})
    record_build(root, runner=runner)
    FakeClock().write(root / "data/x.csv", "x\n2\n")
    assert actions(plan_of(root)) == {"steps.a": BUILD, "steps.b": MAYBE, "steps.c": MAYBE, "steps.d": FRESH}
    built = record_build(root, runner=FakeRunner(content=runner.content))
    assert built.runner.ran == ["steps.a"]
    assert built.reporter.of("node_skipped") == [("steps.b", "up to date (upstream output unchanged)"),
                                                 ("steps.c", "up to date (upstream output unchanged)")]
    assert built.outcome.built == ["steps.a"]
    assert not plan_of(root).has_changes


# --- outputs ---------------------------------------------------------------------------


def test_a_missing_output_is_up_to_date_but_not_here(steps: Path) -> None:
    os.remove(steps / "build/a.txt")
    plan = plan_of(steps)
    step = plan.steps[0]
    assert (step.action, step.reasons, step.missing) == (ABSENT, (), ("build/a.txt",))
    assert not plan.has_changes
    assert plan.summary() == "Plan: 0 to build, 4 up to date (1 not in this workspace)."


def test_build_restores_a_missing_output_from_the_cache(steps: Path) -> None:
    before = (steps / "build/a.txt").read_bytes()
    os.remove(steps / "build/a.txt")
    assert plan_of(steps).steps[0].restorable
    built = record_build(steps)
    assert built.runner.ran == []
    assert built.reporter.of("node_restored") == [("steps.a",)]
    assert (steps / "build/a.txt").read_bytes() == before
    assert not plan_of(steps).has_changes


def test_without_the_cache_build_reruns_a_missing_output_saying_why(steps: Path) -> None:
    os.remove(steps / "build/a.txt")
    drop_caches(steps)  # the project's DVC cache and the default remote
    built = record_build(steps)
    assert built.runner.ran == ["steps.a"]
    assert built.reporter.of("node_started") == [("steps.a", ("output build/a.txt missing",))]
    assert not plan_of(steps).has_changes


def test_after_rebuilding_a_missing_output_the_plan_is_empty(steps: Path) -> None:
    # a non-deterministic recipe rebuilt because its output was gone (and not in the cache): its
    # readers, up to date before, must be re-decided in the same build
    counter = itertools.count()
    runner = FakeRunner(content={"steps.a": lambda task, out: f"run {next(counter)}\n".encode()})
    os.remove(steps / "build/a.txt")
    drop_caches(steps)  # the project's DVC cache and the default remote
    built = record_build(steps, runner=runner)
    assert built.runner.ran == ["steps.a", "steps.b", "steps.c"]
    assert reasons(plan_of(steps)) == {}


def test_a_modified_output_is_restored_from_the_cache(steps: Path) -> None:
    (steps / "build/a.txt").write_text("hand edited\n")
    plan = plan_of(steps)
    step = plan.steps[0]
    assert step.action == RESTORE
    assert [r.text() for r in step.reasons] == [
        "output build/a.txt modified since it was built",
        f"built before (fingerprint {step.fingerprint[:8]}): restore from the cache"]
    assert actions(plan) == {"steps.a": RESTORE, "steps.b": FRESH, "steps.c": FRESH, "steps.d": FRESH}
    built = record_build(steps)
    assert built.runner.ran == []
    assert not plan_of(steps).has_changes


def test_a_modified_output_is_rebuilt_when_the_cache_lost_it(steps: Path) -> None:
    (steps / "build/a.txt").write_text("hand edited\n")
    drop_caches(steps)  # the project's DVC cache and the default remote
    shutil.rmtree(steps / ".mlmake/runcache")
    plan = plan_of(steps)
    assert reasons(plan) == {
        "steps.a": ["output build/a.txt modified since it was built"],
        "steps.b": ["upstream steps.a will rebuild; rebuilds only if its output changes"],
        "steps.c": ["upstream steps.b will rebuild; rebuilds only if its output changes"],
    }
    built = record_build(steps)
    assert built.runner.ran == ["steps.a"]  # same bytes as before: b and c are cut off
    assert not plan_of(steps).has_changes


def test_reverting_an_edit_restores_instead_of_rebuilding(steps: Path) -> None:
    clock = FakeClock()
    clock.write(steps / "data/y.csv", "y\n2\n")
    assert record_build(steps).runner.ran == ["steps.d"]
    clock.write(steps / "data/y.csv", "y\n1\n")
    plan = plan_of(steps)
    step = next(s for s in plan.steps if s.address == "steps.d")
    assert step.action == RESTORE
    assert [r.text() for r in step.reasons] == [
        "data/y.csv changed", f"built before (fingerprint {step.fingerprint[:8]}): restore from the cache"]
    assert plan.summary() == "Plan: 0 to build, 1 to restore from cache, 3 up to date."
    built = record_build(steps)
    assert (built.runner.ran, built.reporter.of("node_restored")) == ([], [("steps.d",)])
    assert not plan_of(steps).has_changes


# --- fingerprints that differ are never fresh --------------------------------------------


def lock_text(root: Path, old: str, new: str) -> None:
    text = (root / "mlproject.lock").read_text()
    assert text.count(old) == 1, old
    (root / "mlproject.lock").write_text(text.replace(old, new))


def test_a_fingerprint_that_differs_with_nothing_to_name_is_still_stale(steps: Path) -> None:
    recorded = read_lock(steps).nodes["steps.d"].fingerprint
    shutil.rmtree(steps / ".mlmake/runcache")
    lock_text(steps, f'fingerprint: "{recorded}"', 'fingerprint: "00000000aaaa"')
    plan = plan_of(steps)
    assert actions(plan)["steps.d"] == BUILD
    assert reasons(plan) == {"steps.d": [f"fingerprint changed: recorded 00000000, current {recorded[:8]}"]}


def test_a_component_no_diff_reads_is_named_with_its_values(steps: Path) -> None:
    # a component this planner does not diff (one a newer kind records) is compared whole
    recorded = read_lock(steps).nodes["steps.d"].fingerprint
    shutil.rmtree(steps / ".mlmake/runcache")
    lock_text(steps, "  steps.d:\n", '  steps.d:\n    deps: {"data/z.csv": "abc"}\n')
    lock_text(steps, f'fingerprint: "{recorded}"', 'fingerprint: "00000000aaaa"')
    assert reasons(plan_of(steps)) == {"steps.d": ['fingerprint changed: deps {"data/z.csv": "abc"} → -']}


def test_a_config_change_that_params_explain_is_named_by_the_param(steps: Path) -> None:
    edit(steps, "depth: 6", "depth: 7")
    assert reasons(plan_of(steps))["steps.a"] == ["params.depth 6 → 7"]


def test_the_builder_acts_on_the_decision_it_is_given(steps: Path) -> None:
    recorded = read_lock(steps).nodes["steps.d"].fingerprint
    lock_text(steps, f'fingerprint: "{recorded}"', 'fingerprint: "00000000aaaa"')
    step = next(s for s in plan_of(steps).steps if s.address == "steps.d")
    assert step.action == RESTORE and step.cached is not None
    built = record_build(steps)
    assert (built.runner.ran, built.reporter.of("node_restored")) == ([], [("steps.d",)])
    assert read_lock(steps).nodes["steps.d"].fingerprint == recorded


# --- outputs belong to the node being built ---------------------------------------------


def test_a_renamed_node_restores_into_its_own_paths(steps: Path) -> None:
    before = (steps / "build/d.txt").read_bytes()
    edit(steps, "  d:\n    cmd: [python, -c, pass]\n    deps: [data/y.csv]\n    outs: [build/d.txt]",
         "  e:\n    cmd: [python, -c, pass]\n    deps: [data/y.csv]\n    outs: [build/d.txt]")
    plan = plan_of(steps)
    assert actions(plan)["steps.e"] == RESTORE and actions(plan)["steps.d"] == REMOVE
    assert record_build(steps).runner.ran == []
    assert (steps / "build/d.txt").read_bytes() == before
    assert list(read_lock(steps).nodes["steps.e"].outputs) == ["build/d.txt"]


def test_a_copied_model_restores_into_its_own_folder(model: Path) -> None:
    edit(model, "models:\n", "models:\n  twin:\n    features: cf\n    target: churned\n    task: binary\n"
         "    split: {seed: \"${params.seed}\"}\n    params: {max_depth: 6}\n")
    step = next(s for s in plan_of(model).steps if s.address == "models.twin")
    assert step.action == RESTORE and step.cached is not None
    assert list(step.cached.outputs) == ["build/models/twin"]
    built = record_build(model)
    assert built.runner.ran == []
    assert sorted(p.name for p in (model / "build/models/twin").iterdir()) == sorted(
        p.name for p in (model / "build/models/churn").iterdir())
    assert list(read_lock(model).nodes["models.twin"].outputs) == ["build/models/twin"]
    assert not plan_of(model).has_changes


def test_an_entry_recorded_for_other_paths_is_rebuilt_into_its_own(steps: Path) -> None:
    # what an older mlmake recorded for a renamed node: another node's output paths (and no
    # entry of its own here or on the machine's default remote)
    shutil.rmtree(steps / ".mlmake/runcache")
    shutil.rmtree(Path(os.environ["MLMAKE_REMOTE"]) / "mlmake" / "runcache", ignore_errors=True)
    lock_text(steps, "      build/d.txt:\n", "      build/old.txt:\n")
    plan = plan_of(steps)
    assert reasons(plan)["steps.d"] == ["outputs recorded at build/old.txt, declared at build/d.txt"]
    assert record_build(steps).runner.ran == ["steps.d"]
    assert not plan_of(steps).has_changes


# --- gates are judged, not fingerprinted -----------------------------------------------


def test_a_gate_edit_is_rejudged_on_the_recorded_metrics(make_project: MakeProject) -> None:
    model = make_project(MODEL_FILES)
    record_build(model, runner=FakeRunner(metrics={"models.churn": {"auc": 0.9}}))
    edit(model, "    params: {max_depth: 6}\n", "    params: {max_depth: 6}\n    gates: {auc: \">= 0.5\"}\n")
    plan = plan_of(model)
    step = next(s for s in plan.steps if s.address == "models.churn")
    assert step.action == CHECK and plan.has_changes
    assert [r.text() for r in step.reasons] == ["gate auc >= 0.5 added: re-checked, passes"]
    assert plan.summary() == "Plan: 0 to build, 1 to re-judge on recorded metrics, 3 up to date."
    built = record_build(model)
    assert built.runner.ran == []
    assert read_lock(model).nodes["models.churn"].gates == {"auc": ">= 0.5"}
    assert not plan_of(model).has_changes
    edit(model, 'auc: ">= 0.5"', 'auc: ">= 0.99"')
    assert reasons(plan_of(model))["models.churn"] == [
        "gate auc >= 0.5 → >= 0.99: re-checked, fails: auc = 0.9000"]
    edit(model, 'auc: ">= 0.99"', 'auc: ">= baseline"')
    assert reasons(plan_of(model))["models.churn"] == [
        "gate auc >= 0.5 → >= baseline: re-checked by the build against its baseline"]


# --- forced, removed, targets ----------------------------------------------------------


def test_force_rebuilds_everything_selected(steps: Path) -> None:
    plan = plan_of(steps, force=True)
    assert {s.address: [r.text() for r in s.reasons] for s in plan.steps} == {
        a: ["forced"] for a in ("steps.a", "steps.b", "steps.c", "steps.d")}
    assert set(actions(plan).values()) == {BUILD}


def test_force_with_targets_forces_only_the_targets(steps: Path) -> None:
    plan = plan_of(steps, ["steps.b"], force=True)
    assert {s.address: (s.action, [r.text() for r in s.reasons]) for s in plan.steps} == {
        "steps.a": (FRESH, []), "steps.b": (BUILD, ["forced"])}
    plan = plan_of(steps, ["steps.b"], force=True, downstream=True)
    assert actions(plan) == {"steps.a": FRESH, "steps.b": BUILD, "steps.c": MAYBE}


def test_force_does_not_hide_a_new_node(make_project: MakeProject) -> None:
    assert set(actions(plan_of(make_project(STEP_FILES), force=True)).values()) == {NEW}


def test_a_node_gone_from_the_file_is_removed(steps: Path) -> None:
    edit(steps, "  d:\n    cmd: [python, -c, pass]\n    deps: [data/y.csv]\n    outs: [build/d.txt]\n", "")
    plan = plan_of(steps)
    assert plan.steps[-1] == Decision("steps.d", "cmd", REMOVE, (Reason("removed"),))
    assert [r.text() for r in plan.steps[-1].reasons] == ["no longer in mlproject.yaml"]
    assert plan.has_changes
    assert plan.summary() == "Plan: 0 to build, 3 up to date, 1 to remove."
    assert REMOVE not in actions(plan_of(steps, ["steps.c"])).values()  # removal only in a whole plan
    record_build(steps)
    assert "steps.d" not in read_lock(steps).nodes
    assert not plan_of(steps).has_changes


def test_targets_select_what_they_need_in_build_order(steps: Path) -> None:
    assert list(actions(plan_of(steps, ["steps.c"]))) == ["steps.a", "steps.b", "steps.c"]
    assert list(actions(plan_of(steps, ["b"]))) == ["steps.a", "steps.b"]
    assert list(actions(plan_of(steps, ["d", "steps.a"]))) == ["steps.a", "steps.d"]


def test_downstream_adds_the_readers_and_what_they_need(steps: Path) -> None:
    assert list(actions(plan_of(steps, ["steps.b"], downstream=True))) == ["steps.a", "steps.b", "steps.c"]
    assert list(actions(plan_of(steps, ["steps.a"], downstream=True))) == ["steps.a", "steps.b", "steps.c"]
    assert list(actions(plan_of(steps, ["steps.d"], downstream=True))) == ["steps.d"]


def test_a_stale_node_outside_the_targets_is_not_planned(steps: Path) -> None:
    FakeClock().write(steps / "data/y.csv", "y\n2\n")
    assert not plan_of(steps, ["steps.c"]).has_changes
    assert actions(plan_of(steps, ["steps.d"])) == {"steps.d": BUILD}


@pytest.mark.parametrize(("target", "message"), [
    ("bb", "unknown target 'bb' (did you mean 'b'?)"),
    ("steps.zz", "unknown target 'steps.zz' (did you mean 'steps.d'?)"),
    ("nothing", "unknown target 'nothing'"),
])
def test_an_unknown_target_is_an_error(steps: Path, target: str, message: str) -> None:
    with pytest.raises(MlmakeError) as info:
        plan_of(steps, [target])
    assert str(info.value) == message


def test_an_ambiguous_bare_name_is_an_error(make_project: MakeProject) -> None:
    root = make_project({**MODEL_FILES, "mlproject.yaml": MODEL.replace("  report:", "  churn:")})
    with pytest.raises(MlmakeError) as info:
        plan_of(root, ["churn"])
    assert str(info.value) == "target 'churn' is ambiguous: models.churn, steps.churn"


# --- the pure core ---------------------------------------------------------------------


def test_planning_reads_the_file_system_only_through_files(steps: Path) -> None:
    _, graph = load(steps)
    lock = read_lock(steps)
    recorded: dict[str, str] = {}
    for entry in lock.nodes.values():
        recorded.update(entry.components.code)
        recorded.update({out: o["hash"] for out, o in entry.outputs.items()})
    assert not make_plan(graph, lock, FakeFiles(recorded)).has_changes
    plan = make_plan(graph, lock, FakeFiles({**recorded, "data/y.csv": "changed"}))
    assert reasons(plan) == {"steps.d": ["data/y.csv changed"]}
    plan = make_plan(graph, lock, FakeFiles(recorded, pointers={"data/x.csv": "md5:new"}))
    assert reasons(plan)["steps.a"] == ["data/x.csv changed"]


def test_the_plan_lists_nodes_in_build_order_then_removals() -> None:
    plan = Plan((Decision("a", "cmd", NEW), Decision("b", "cmd", BUILD), Decision("c", "cmd", MAYBE),
                 Decision("d", "cmd", FRESH), Decision("e", "cmd", ABSENT, missing=("x",)),
                 Decision("f", "cmd", REMOVE)))
    assert plan.count(NEW, BUILD) == 2
    assert plan.summary() == "Plan: 2 to build, 1 to check after upstream, 2 up to date (1 not in this workspace), " \
                             "1 to remove."
    assert Plan((Decision("d", "cmd", FRESH), Decision("e", "cmd", ABSENT))).has_changes is False
    assert Plan(()).summary() == "Plan: 0 to build, 0 up to date."


@pytest.mark.parametrize(("reason", "text"), [
    (Reason("new"), "new node"),
    (Reason("forced"), "forced"),
    (Reason("config", "params.max_depth", 6, 8), "params.max_depth 6 → 8"),
    (Reason("config", "sql", "SELECT 1", "SELECT 2"), "sql SELECT 1 → SELECT 2"),
    (Reason("config", "key", ["a", "b"], {"x": None}), 'key ["a", "b"] → {"x": null}'),
    (Reason("config", "cmd", ["x.py", "a,b"], ["x.py", "a,c"]), 'cmd ["x.py", "a,b"] → ["x.py", "a,c"]'),
    (Reason("config", "sql", "SELECT a\nFROM t", "SELECT b\nFROM t"), "sql changed"),
    (Reason("config", "sql", "SELECT 1", "SELECT " + "x" * 80), "sql changed"),
    (Reason("param", "params.seed", 42, 7), "params.seed 42 → 7"),
    (Reason("config_added", "sql", None, "SELECT a\nFROM t"), "sql added"),
    (Reason("config_removed", "sql", "SELECT a\nFROM t", None), "sql removed"),
    (Reason("recipe", "model", 1, 2), "recipe of model 1 → 2"),
    (Reason("cached", "0123abcd"), "built before (fingerprint 0123abcd): restore from the cache"),
    (Reason("config_added", "params.eta", None, 0.1), "params.eta added (0.1)"),
    (Reason("config_removed", "params.eta", True, None), "params.eta removed (was true)"),
    (Reason("library", "polars", "1.0", "1.1"), "polars 1.0 → 1.1"),
    (Reason("input", "data/x.csv"), "data/x.csv changed"),
    (Reason("input_added", "data/x.csv"), "data/x.csv added"),
    (Reason("input_removed", "data/x.csv"), "data/x.csv no longer read"),
    (Reason("input_missing", "data/x.csv"), "data/x.csv is missing"),
    (Reason("code", "scripts/x.py"), "code scripts/x.py changed"),
    (Reason("code_missing", "scripts/x.py"), "code scripts/x.py is missing"),
    (Reason("upstream", "steps.a"), "upstream steps.a changed"),
    (Reason("upstream_added", "steps.a"), "now depends on steps.a"),
    (Reason("upstream_removed", "steps.a"), "no longer depends on steps.a"),
    (Reason("upstream_pending", "steps.a"), "upstream steps.a will rebuild; rebuilds only if its output changes"),
    (Reason("output_missing", "build/a.txt"), "output build/a.txt missing"),
    (Reason("output_modified", "build/a.txt"), "output build/a.txt modified since it was built"),
    (Reason("removed"), "no longer in mlproject.yaml"),
    (Reason("something_new", "x"), "something_new x"),
])
def test_reason_texts(reason: Reason, text: str) -> None:
    assert reason.text() == text
    assert reason.to_dict() == {"code": reason.code, "subject": reason.subject, "old": reason.old,
                                "new": reason.new, "text": text}


def test_a_path_with_an_emoji_is_fresh_in_a_clone(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": "version: 1\nproject: p\ndatasets:\n  p:\n    path: data/🐧.csv\n",
                         "data/🐧.csv": "a\n1\n"})
    record_build(root)
    # without the JSON copy (a fresh clone) the YAML is read: an astral key once came back as surrogates
    os.remove(root / ".mlmake/cache/lock.json")
    assert reasons(plan_of(root)) == {}
