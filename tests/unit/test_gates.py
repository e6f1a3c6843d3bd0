"""mlmake/gates.py (parse and judge one gate) and the model recipe's use of it in
mlmake/kinds/metrics.py (parse_gates, judge)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mlmake.core import gates
from mlmake.core.errors import NodeError
from mlmake.core.gates import Gate, Verdict, judge, measure, parse_gate, show_number, verdicts
from mlmake.ml import metrics

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "mlproject.schema.json")
                    .read_text(encoding="utf-8"))
SCHEMA_PATTERN = SCHEMA["$defs"]["model"]["properties"]["gates"]["additionalProperties"]["pattern"]


# --- parse ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "gate"), [
    (">= 0.8", Gate("auc", ">=", 0.8)),
    (">=0.8", Gate("auc", ">=", 0.8)),
    ("  >=   0.8  ", Gate("auc", ">=", 0.8)),
    ("<= 1", Gate("auc", "<=", 1.0)),
    ("> .5", Gate("auc", ">", 0.5)),
    ("< 5.", Gate("auc", "<", 5.0)),
    ("== -0.5", Gate("auc", "==", -0.5)),
    ("!= +2", Gate("auc", "!=", 2.0)),
    (">= 1e-3", Gate("auc", ">=", 0.001)),
    (">= 2E2", Gate("auc", ">=", 200.0)),
    (">= baseline", Gate("auc", ">=", 0.0, relative=True)),
    (">= baseline - 0.01", Gate("auc", ">=", -0.01, relative=True)),
    (">=baseline-0.01", Gate("auc", ">=", -0.01, relative=True)),
    ("<= baseline + 2", Gate("auc", "<=", 2.0, relative=True)),
    ("> baseline + 1e-2", Gate("auc", ">", 0.01, relative=True)),
])
def test_parse(text: str, gate: Gate) -> None:
    assert parse_gate("auc", text) == gate
    assert re.fullmatch(SCHEMA_PATTERN, text), "the schema must accept what the parser accepts"


@pytest.mark.parametrize("text", [
    "", "0.8", ">=", "=> 0.8", "≥ 0.8", ">= 0.8x", ">= auc", ">= baseline * 2", ">= baseline -", ">= baseline 0.1",
    ">= 0.8 - baseline", ">= - 0.8", ">= 1,5", "baseline - 0.01",
])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_gate("auc", text)
    assert str(info.value) == (f"gate on 'auc': '{text}' is not a comparison like '>= 0.8' or "
                               "'>= baseline - 0.01'")
    assert not re.fullmatch(SCHEMA_PATTERN, text), "the schema must refuse what the parser refuses"


@pytest.mark.parametrize(("text", "rule"), [
    (">= 0.8", ">= 0.8"), (">= 0.80", ">= 0.8"), ("<= 1000", "<= 1000"), ("<= 1000.0", "<= 1000"),
    ("< 1e-3", "< 0.001"), ("== -2", "== -2"), (">= baseline", ">= baseline"), (">= baseline - 0", ">= baseline"),
    (">= baseline - 0.01", ">= baseline - 0.01"), ("<= baseline + 2", "<= baseline + 2"),
    ("<=  baseline+0.5", "<= baseline + 0.5"),
])
def test_rule_and_str(text: str, rule: str) -> None:
    gate = parse_gate("logloss", text)
    assert gate.rule == rule
    assert str(gate) == f"logloss {rule}"
    assert parse_gate("logloss", gate.rule) == gate, "the rule reads back as the same gate"


def test_show_number() -> None:
    assert [show_number(v) for v in (1000.0, 0.0, -3.0, 0.01, 0.1 + 0.2, 1e-05)] == [
        "1000", "0", "-3", "0.01", "0.30000000000000004", "1e-05"]


# --- judge ----------------------------------------------------------------------------------------


def test_judge_absolute_pass_and_fail() -> None:
    gate = parse_gate("auc", ">= 0.8")
    assert judge(gate, 0.85, None) == Verdict(gate, 0.85, None, 0.8, True, "")
    assert judge(gate, 0.8, None).passed, "the boundary holds for >="
    assert judge(gate, 0.75, 0.9) == Verdict(gate, 0.75, 0.9, 0.8, False, "gate auc >= 0.8 failed: auc = 0.7500")


def test_judge_relative_pass_and_fail() -> None:
    gate = parse_gate("auc", ">= baseline - 0.01")
    ok = judge(gate, 0.845, 0.85)
    assert ok.passed and ok.threshold == pytest.approx(0.84) and ok.message == ""
    bad = judge(gate, 0.8, 0.85)
    assert not bad.passed and bad.baseline == 0.85 and bad.threshold == pytest.approx(0.84)
    assert bad.message == "gate auc >= baseline - 0.01 failed: auc = 0.8000, baseline 0.8500 (threshold 0.8400)"


def test_judge_relative_upper_bound() -> None:
    gate = parse_gate("logloss", "<= baseline + 0.02")
    assert judge(gate, 0.41, 0.4).passed
    assert judge(gate, 0.43, 0.4).message == (
        "gate logloss <= baseline + 0.02 failed: logloss = 0.4300, baseline 0.4000 (threshold 0.4200)")


def test_judge_impossible_relative_gate() -> None:
    gate = parse_gate("auc", ">= baseline + 0.5")
    assert judge(gate, 0.8277, 0.8388).message == (
        "gate auc >= baseline + 0.5 failed: auc = 0.8277, baseline 0.8388 (threshold 1.3388)")


def test_judge_without_a_baseline_value() -> None:
    gate = parse_gate("auc", ">= baseline - 0.01")
    assert judge(gate, 0.7, None) == Verdict(gate, 0.7, None, None, True,
                                             "gate auc >= baseline - 0.01: no baseline value; not checked")
    # an absolute gate does not need one
    assert not judge(parse_gate("auc", ">= 0.8"), 0.7, None).passed


def test_judge_an_undefined_value() -> None:
    gate = parse_gate("auc", ">= 0.8")
    assert judge(gate, None, None) == Verdict(gate, None, None, 0.8, False,
                                              "gate auc >= 0.8 failed: auc is undefined on the held-out rows")
    relative = parse_gate("auc", ">= baseline")
    verdict = judge(relative, None, 0.9)
    assert not verdict.passed and verdict.threshold == 0.9
    assert verdict.message == "gate auc >= baseline failed: auc is undefined on the held-out rows"


@pytest.mark.parametrize(("text", "value", "passed"), [
    ("== 1", 1.0, True), ("== 1", 0.99, False), ("!= 1", 0.99, True), ("!= 1", 1.0, False),
    ("> 0.5", 0.5, False), ("< 0.5", 0.5, False), ("<= 0.5", 0.5, True), (">= 0.5", 0.5, True),
])
def test_judge_operators(text: str, value: float, passed: bool) -> None:
    assert judge(parse_gate("x", text), value, None).passed is passed


def test_verdict_to_dict() -> None:
    gate = parse_gate("auc", ">= baseline - 0.01")
    assert judge(gate, 0.8, 0.85).to_dict() == {
        "op": ">=", "rule": ">= baseline - 0.01", "threshold": pytest.approx(0.84), "value": 0.8,
        "baseline": 0.85, "passed": False,
        "note": "gate auc >= baseline - 0.01 failed: auc = 0.8000, baseline 0.8500 (threshold 0.8400)"}
    assert judge(gate, 0.8, None).to_dict()["threshold"] is None


# --- in the model recipe --------------------------------------------------------------------------


def test_parse_gates_checks_every_gate_before_training() -> None:
    assert metrics.parse_gates({"logloss": "<= baseline", "auc": ">= 0.7"}, ["auc", "logloss"]) == [
        Gate("auc", ">=", 0.7), Gate("logloss", "<=", 0.0, relative=True)]
    with pytest.raises(NodeError) as info:
        metrics.parse_gates({"f1": ">= 0.5", "auc": "at least 0.7"}, ["auc", "logloss"])
    assert str(info.value) == (
        "gate on 'auc': 'at least 0.7' is not a comparison like '>= 0.8' or '>= baseline - 0.01'; "
        "gate on 'f1': the metric is not computed (metrics: auc, logloss); add it to metrics")


def test_recipe_judge_reports_each_gate() -> None:
    gates = metrics.parse_gates({"auc": ">= baseline - 0.01", "logloss": "<= 0.5", "f1": ">= baseline"},  # sorted
                                ["auc", "logloss", "f1"])
    outcome, failed = metrics.judge(gates, {"auc": 0.8, "logloss": 0.4, "f1": 0.6}, {"auc": 0.85})
    assert failed == ["gate auc >= baseline - 0.01 failed: auc = 0.8000, baseline 0.8500 (threshold 0.8400)"]
    assert outcome["logloss"]["passed"] is True and outcome["logloss"]["threshold"] == 0.5
    assert outcome["f1"] == {"op": ">=", "rule": ">= baseline", "threshold": None, "value": 0.6, "baseline": None,
                             "passed": True, "note": "gate f1 >= baseline: no baseline value; not checked"}
    assert metrics.judge(gates[2:], {"logloss": 0.4}) == (
        {"logloss": {"op": "<=", "rule": "<= 0.5", "threshold": 0.5, "value": 0.4, "baseline": None,
                     "passed": True, "note": ""}}, [])


def test_failures_judges_a_nodes_gates_on_its_metrics() -> None:
    from mlmake.core.gates import failures

    rules = {"auc": ">= 0.99", "accuracy": "> 0.5", "logloss": "<0.01", "f1": ">= baseline - 0.01"}
    assert failures(rules, {"auc": 0.8, "accuracy": 0.7, "logloss": 0.4, "f1": 0.5}, {"f1": 0.6}) == [
        "gate auc >= 0.99 failed: auc = 0.8000",
        "gate f1 >= baseline - 0.01 failed: f1 = 0.5000, baseline 0.6000 (threshold 0.5900)",
        "gate logloss < 0.01 failed: logloss = 0.4000"]
    # a relative gate without a baseline is not checked; an unreadable rule or an undefined metric fails
    assert failures({"f1": ">= baseline"}, {"f1": 0.5}, None) == []
    assert failures({"auc": "at least 0.8", "f1": ">= 0.5"}, {}, None) == [
        "gate on 'auc': 'at least 0.8' is not a comparison like '>= 0.8' or '>= baseline - 0.01'",
        "gate f1 >= 0.5 failed: f1 is undefined on the held-out rows"]


# --- fairness gates: over the slices a model records ------------------------------------------------

SLICED = {"auc": 0.82, "slices": {
    "plan": {"basic": {"auc": 0.84, "logloss": 0.41, "rows": 140}, "pro": {"auc": 0.71, "logloss": 0.52, "rows": 60}},
    "region": {"east": {"auc": 0.75, "rows": 50}, "north": {"auc": 0.80, "rows": 50}, "south": {"rows": 3}},
}}


@pytest.mark.parametrize(("metric", "value", "where"), [
    ("auc", 0.82, ""),
    ("auc.min_slice", 0.71, "slice plan=pro"),
    ("auc.max_slice", 0.84, "slice plan=basic"),
    ("logloss.max_slice", 0.52, "slice plan=pro"),
    ("auc.slice_gap", pytest.approx(0.13), "plan: pro 0.7100, basic 0.8400"),  # region's gap is 0.05
    ("logloss.slice_gap", pytest.approx(0.11), "plan: basic 0.4100, pro 0.5200"),
    ("f1.min_slice", None, ""),
])
def test_measure_reads_the_worst_slice_and_the_largest_gap(metric: str, value: object, where: str) -> None:
    found = measure(metric, SLICED)
    assert (found.value, found.where) == (value, where)


def test_a_slice_gate_names_the_slice_that_fails() -> None:
    assert [v.message if not isinstance(v, str) else v for v in verdicts(
        {"auc.min_slice": ">= 0.75", "auc.slice_gap": "<= 0.05", "auc.max_slice": ">= 0.8"}, SLICED, None)] == [
        "",
        "gate auc.min_slice >= 0.75 failed: auc.min_slice = 0.7100 (slice plan=pro)",
        "gate auc.slice_gap <= 0.05 failed: auc.slice_gap = 0.1300 (plan: pro 0.7100, basic 0.8400)"]


def test_a_slice_gate_against_the_baseline_compares_slice_with_slice() -> None:
    before = {"slices": {"plan": {"basic": {"auc": 0.80}, "pro": {"auc": 0.78}}}}
    assert gates.failures({"auc.min_slice": ">= baseline - 0.05"}, SLICED, before) == [
        "gate auc.min_slice >= baseline - 0.05 failed: auc.min_slice = 0.7100 (slice plan=pro), "
        "baseline 0.7800 (threshold 0.7300)"]


@pytest.mark.parametrize(("metrics", "message"), [
    ({"auc": 0.8}, "gate auc.min_slice >= 0.7 failed: auc is undefined on every slice of the held-out rows"),
    ({"slices": {"plan": {"basic": {"auc": 0.8}, "pro": {"rows": 2}}}},
     "gate auc.slice_gap <= 0.05 failed: auc.slice_gap needs auc on two values of a slice column, "
     "and the held-out rows have fewer"),
])
def test_a_slice_gate_without_slice_values_fails_saying_why(metrics: dict[str, object], message: str) -> None:
    rules = {"auc.min_slice": ">= 0.7"} if "auc" in metrics else {"auc.slice_gap": "<= 0.05"}
    assert gates.failures(rules, metrics, None) == [message]


def test_the_model_recipe_accepts_a_slice_gate_on_a_computed_metric() -> None:
    assert metrics.parse_gates({"auc.min_slice": ">= 0.7", "auc.slice_gap": "<= 0.1"}, ["auc"]) == [
        Gate("auc.min_slice", ">=", 0.7), Gate("auc.slice_gap", "<=", 0.1)]
    with pytest.raises(NodeError) as info:
        metrics.parse_gates({"f1.min_slice": ">= 0.7"}, ["auc"])
    assert str(info.value) == ("gate on 'f1.min_slice': the metric is not computed (metrics: auc); add it to "
                               "metrics")
