"""Nothing depends on build history (DESIGN §3): after any sequence of edits to data, params,
code and configuration, each followed by an incremental `mlmake build`, the lock and every
output byte equal those of a clean build of the same sources at another path.

The project is generated here and small (60 rows, a few boosting rounds): a dataset, a SQL
feature set, an xgboost model with a gate, a `cmd` step that reads the model, and both an
http and a batch deploy target. Its sources are a function of a few knobs; each edit turns
one. Several knobs change a fingerprint but not an output (a comment in the SQL or the
script, the dataset's checks, the gate), which is where early cutoff and the run cache
make an incremental build take another path than a clean one. The feature set does no
floating-point aggregation, whose result may depend on the order rows are summed in.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.helpers import run_cli

KNOBS = {
    "data": 3,  # which values the CSV holds
    "seed": 2,  # the global param the split and training read
    "depth": 2,  # the model's max_depth
    "sql": 2,  # 1: the same query with a comment (same table)
    "script": 3,  # 1: a comment (same output), 2: another output
    "checks": 2,  # the dataset's row-count check (changes its contract.json)
    "gate": 2,  # a judgment: re-checked on the recorded metrics
}

SPEC = """\
version: 1
project: tiny
params:
  seed: {seed}
datasets:
  points:
    path: data/points.csv
    schema:
      id: {{type: int64, unique: true, nullable: false}}
      x: {{type: float64}}
      y: {{type: float64}}
    checks:
      - rows: ">= {rows}"
features:
  shaped:
    from: points
    key: id
    sql: |
      SELECT id, x, y, x * 2 AS x2{comment}
      FROM points
models:
  fit:
    features: shaped
    target: y
    task: regression
    split: {{test_size: 0.25, seed: "${{params.seed}}"}}
    params: {{max_depth: {depth}, eta: 0.3, num_boost_round: 5, seed: "${{params.seed}}"}}
    metrics: [rmse]
    gates:
      rmse: "<= {gate}"
steps:
  summary:
    cmd: [python, scripts/summary.py, build/models/fit/metrics.json, build/summary.txt]
    deps: [scripts/summary.py, models.fit]
    outs: [build/summary.txt]
deploy:
  api:
    model: fit
    kind: http
  scores:
    model: fit
    kind: batch
"""

SCRIPT = """\
import json
import sys
{comment}
metrics = json.load(open(sys.argv[1]))["metrics"]
with open(sys.argv[2], "w") as out:
    out.write("{label} " + format(metrics["rmse"], ".6f") + "\\n")
"""


def sources(knobs: dict[str, int]) -> dict[str, str]:
    """The project's files for one setting of the knobs."""
    spec = SPEC.format(seed=knobs["seed"] + 1, rows=(10, 5)[knobs["checks"]], depth=knobs["depth"] + 2,
                       comment=("", "  -- doubled")[knobs["sql"]], gate=(1000, 2000)[knobs["gate"]])
    script = SCRIPT.format(comment=("", "# the held-out error", "")[knobs["script"]],
                           label=("rmse", "rmse", "error")[knobs["script"]])
    rows = ["id,x,y"] + [f"{i},{i / 4 + knobs['data']},{(i * 7 + knobs['data'] * 3) % 11}.5" for i in range(60)]
    return {"mlproject.yaml": spec, "scripts/summary.py": script, "data/points.csv": "\n".join(rows) + "\n"}


def write(root: Path, knobs: dict[str, int]) -> None:
    for rel, text in sources(knobs).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def build(root: Path) -> None:
    result: Result = run_cli(root, "build")
    assert result.exit_code == 0, result.stdout + result.stderr


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


START = dict.fromkeys(KNOBS, 0)
edits = st.lists(st.sampled_from(sorted(KNOBS)).flatmap(
    lambda knob: st.tuples(st.just(knob), st.integers(0, KNOBS[knob] - 1))), min_size=1, max_size=4)


def check_incremental_equals_clean(tmp_path_factory: pytest.TempPathFactory, sequence: list[tuple[str, int]]) -> None:
    base = tmp_path_factory.mktemp("incremental")
    root, knobs = base / "work", dict(START)
    write(root, knobs)
    build(root)
    for knob, value in sequence:
        knobs[knob] = value
        write(root, knobs)
        build(root)
    clean = base / "elsewhere" / "clean"  # another path: nothing may depend on where it is built
    write(clean, knobs)
    build(clean)
    assert (root / "mlproject.lock").read_text(encoding="utf-8") == (clean / "mlproject.lock").read_text(
        encoding="utf-8")
    assert tree(root / "build") == tree(clean / "build")
    shutil.rmtree(base, ignore_errors=True)


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sequence=edits)
@example(sequence=[("checks", 1)])  # early cutoff below a dataset whose fingerprint changed
@example(sequence=[("depth", 1), ("gate", 1), ("depth", 0)])  # a judgment, then back to a cached model
@example(sequence=[("script", 1), ("data", 2), ("sql", 1)])  # same-output edits around a real one
def test_an_incremental_build_equals_a_clean_one(tmp_path_factory: pytest.TempPathFactory,
                                                 sequence: list[tuple[str, int]]) -> None:
    check_incremental_equals_clean(tmp_path_factory, sequence)


@pytest.mark.slow
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sequence=st.lists(st.sampled_from(sorted(KNOBS)).flatmap(
    lambda knob: st.tuples(st.just(knob), st.integers(0, KNOBS[knob] - 1))), min_size=1, max_size=8))
def test_many_incremental_builds_equal_a_clean_one(tmp_path_factory: pytest.TempPathFactory,
                                                   sequence: list[tuple[str, int]]) -> None:
    check_incremental_equals_clean(tmp_path_factory, sequence)


def test_the_knobs_reach_every_kind_of_edit() -> None:
    """Each knob changes the sources (an edit the property test can make), and only its own file."""
    files: Callable[[dict[str, int]], dict[str, str]] = sources
    for knob, values in KNOBS.items():
        variants = [files({**START, knob: v}) for v in range(values)]
        changed = {rel for v in variants for rel in v if v[rel] != variants[0][rel]}
        assert len({tuple(sorted(v.items())) for v in variants}) == values, knob
        assert changed == ({"data/points.csv"} if knob == "data" else {"scripts/summary.py"} if knob == "script"
                           else {"mlproject.yaml"}), knob
