"""mlmake/diff.py: metric and param deltas between two snapshots, as text, markdown and JSON."""

from __future__ import annotations

import json

import pytest

from mlmake.outputs.diff import (
    Delta,
    Snapshot,
    as_json,
    as_markdown,
    as_text,
    flatten,
    metric_deltas,
    param_deltas,
    show,
)

OLD = Snapshot(
    "main",
    metrics={"models.m": {"auc": 0.8, "logloss": 0.5, "f1": 0.6}, "datasets.d": {"rows": 100},
             "models.gone": {"auc": 0.7}},
    configs={"models.m": {"params": {"max_depth": 3, "eta": 0.1}, "target": "y", "metrics": ["auc"]},
             "datasets.d": {"path": "a.csv", "schema": {}}},
)
NEW = Snapshot(
    "workspace",
    metrics={"models.m": {"auc": 0.85, "logloss": 0.5, "accuracy": 0.9}, "datasets.d": {"rows": 100},
             "models.new": {"auc": 0.6}},
    configs={"models.m": {"params": {"max_depth": 8, "eta": 0.1, "seed": 7}, "target": "y",
                          "metrics": ["auc", "f1"]},
             "datasets.d": {"path": "b.csv", "schema": {}}},
)


# --- Delta ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "change", "relative"), [
    (0.8, 0.85, pytest.approx(0.05), pytest.approx(0.0625)),
    (2, 4, 2.0, 1.0),
    (-2.0, -1.0, 1.0, 0.5),  # relative to |old|: an improvement of a negative value is positive
    (0, 3, 3.0, None),  # no relative change from zero
    (0.5, 0.5, 0.0, 0.0),
    (None, 0.6, None, None),
    (0.6, None, None, None),
    (True, False, None, None),  # booleans are not numbers
    ("a", "b", None, None),
    ([1], [2], None, None),
])
def test_delta_change_and_relative(old: object, new: object, change: object, relative: object) -> None:
    d = Delta("models.m", "auc", old, new)
    assert d.change == change
    assert d.relative == relative


def test_delta_to_dict() -> None:
    assert Delta("models.m", "params.max_depth", 3, 6).to_dict() == {
        "node": "models.m", "key": "params.max_depth", "old": 3, "new": 6, "change": 3.0, "relative": 1.0}


# --- deltas ---------------------------------------------------------------------------------------


def test_metric_deltas_only_what_changed_sorted_by_node_and_key() -> None:
    assert metric_deltas(OLD, NEW) == [
        Delta("models.gone", "auc", 0.7, None),
        Delta("models.m", "accuracy", None, 0.9),
        Delta("models.m", "auc", 0.8, 0.85),
        Delta("models.m", "f1", 0.6, None),
        Delta("models.new", "auc", None, 0.6),
    ]


def test_metric_deltas_every() -> None:
    every = metric_deltas(OLD, NEW, every=True)
    assert [(d.node, d.key) for d in every] == [
        ("datasets.d", "rows"), ("models.gone", "auc"), ("models.m", "accuracy"), ("models.m", "auc"),
        ("models.m", "f1"), ("models.m", "logloss"), ("models.new", "auc")]
    assert Delta("datasets.d", "rows", 100, 100) in every


def test_param_deltas_flattened() -> None:
    assert param_deltas(OLD, NEW) == [
        Delta("datasets.d", "path", "a.csv", "b.csv"),
        Delta("models.m", "metrics", ["auc"], ["auc", "f1"]),
        Delta("models.m", "params.max_depth", 3, 8),
        Delta("models.m", "params.seed", None, 7),
    ]
    keys = [(d.node, d.key) for d in param_deltas(OLD, NEW, every=True)]
    assert keys == [("datasets.d", "path"), ("datasets.d", "schema"), ("models.m", "metrics"),
                    ("models.m", "params.eta"), ("models.m", "params.max_depth"), ("models.m", "params.seed"),
                    ("models.m", "target")]


def test_no_deltas_between_equal_snapshots() -> None:
    assert metric_deltas(OLD, OLD) == [] and param_deltas(NEW, NEW) == []
    assert metric_deltas(Snapshot("a"), Snapshot("b")) == []


def test_a_value_equal_across_types_is_unchanged() -> None:
    # the lock stores 3 where a run record may hold 3.0: not a change
    assert metric_deltas(Snapshot("a", {"m": {"x": 3}}), Snapshot("b", {"m": {"x": 3.0}})) == []


def test_flatten() -> None:
    assert flatten({"a": 1, "b": {"c": 2, "d": {"e": [1, 2]}}, "f": {}, 3: "x"}) == {  # type: ignore[dict-item]
        "a": 1, "b.c": 2, "b.d.e": [1, 2], "f": {}, "3": "x"}
    assert flatten({"a": {"b": 1}}, "params") == {"params.a.b": 1}
    assert flatten({}) == {}


# --- output ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "text"), [
    (None, "-"), (0.123456789, "0.123457"), (1e-7, "1e-07"), (3.0, "3"), (3, "3"), (True, "true"),
    ("csv", "csv"), ("x" * 60, "x" * 60), ("x" * 61, "(text)"), ("SELECT 1\nFROM t", "(text)"),
    ([1, "a"], '[1, "a"]'), ({}, "{}"),
])
def test_show(value: object, text: str) -> None:
    assert show(value) == text


DELTAS = [
    Delta("models.m", "auc", 0.8, 0.85),
    Delta("models.m", "rmse", 0, 2.5),
    Delta("models.new", "auc", None, 0.6),
    Delta("steps.s", "note", "a|b", "c"),
]


def test_as_text() -> None:
    assert as_text(DELTAS, "main", "workspace", "metrics") == (
        "node        key   main  workspace  change  %\n"
        "models.m    auc   0.8   0.85       +0.05   +6.25%\n"
        "models.m    rmse  0     2.5        +2.5\n"
        "models.new  auc   -     0.6\n"
        "steps.s     note  a|b   c\n")


def test_as_text_nothing_changed() -> None:
    assert as_text([], "main", "workspace", "metrics") == "No metrics changed between main and workspace.\n"
    assert as_text([], "HEAD~1", "workspace", "params") == "No params changed between HEAD~1 and workspace.\n"


def test_as_markdown() -> None:
    assert as_markdown(DELTAS, "main", "this branch", "metrics") == (
        "| node | metric | `main` | `this branch` | change |\n"
        "|---|---|---|---|---|\n"
        "| `models.m` | `auc` | 0.8 | 0.85 | +0.05 (+6.25%) |\n"
        "| `models.m` | `rmse` | 0 | 2.5 | +2.5 |\n"
        "| `models.new` | `auc` | - | 0.6 |  |\n"
        "| `steps.s` | `note` | a\\|b | c |  |\n")


def test_as_markdown_of_params_and_nothing() -> None:
    text = as_markdown([Delta("models.m", "params.max_depth", 3, 8)], "main", "workspace", "params")
    assert text == ("| node | param | `main` | `workspace` | change |\n|---|---|---|---|---|\n"
                    "| `models.m` | `params.max_depth` | 3 | 8 | +5 (+166.67%) |\n")
    assert as_markdown([], "main", "workspace", "params") == "No params changed between `main` and `workspace`.\n"


def test_markdown_rows_have_the_header_s_column_count() -> None:
    lines = as_markdown(DELTAS, "a", "b", "metrics").splitlines()
    counts = {line.replace("\\|", "").count("|") for line in lines}
    assert counts == {6}


def test_as_json() -> None:
    text = as_json(DELTAS[:2], "main", "workspace")
    assert text.endswith("}\n")
    assert json.loads(text) == {
        "format_version": 1, "old": "main", "new": "workspace",
        "changes": [
            {"node": "models.m", "key": "auc", "old": 0.8, "new": 0.85, "change": pytest.approx(0.05),
             "relative": pytest.approx(0.0625)},
            {"node": "models.m", "key": "rmse", "old": 0, "new": 2.5, "change": 2.5, "relative": None},
        ]}
    assert as_json([], "a", "b") == '{\n  "format_version": 1,\n  "old": "a",\n  "new": "b",\n  "changes": []\n}\n'
