"""mlmake/outputs/xychart.py: the metric history of changed models in the pull-request comment."""

from __future__ import annotations

from mlmake.outputs import xychart


def test_one_chart_per_metric_with_the_recorded_values_oldest_first() -> None:
    runs = [{"auc": 0.8249113475177305, "f1": 0.5}, {"auc": 0.81}]
    assert xychart.history_section(["models.churn"], {"models.churn": runs}) == [
        "#### Metric history", "",
        "<details><summary><code>models.churn</code>: 2 built runs</summary>", "",
        "```mermaid", "xychart-beta", '  title "models.churn: auc"', '  x-axis "run" ["1", "2"]', '  y-axis "auc"',
        "  line [0.8249113475177305, 0.81]", "```", "",
        "```mermaid", "xychart-beta", '  title "models.churn: f1"', '  x-axis "run" ["1"]', '  y-axis "f1"',
        "  line [0.5]", "```", "",
        "</details>", ""]


def test_a_model_without_runs_is_named_and_without_any_runs_there_is_no_section() -> None:
    assert xychart.history_section(["models.new", "models.old"], {"models.old": [{"auc": 0.8}]}) == [
        "#### Metric history", "", "<details><summary><code>models.old</code>: 1 built run</summary>", "",
        "```mermaid", "xychart-beta", '  title "models.old: auc"', '  x-axis "run" ["1"]', '  y-axis "auc"',
        "  line [0.8]", "```", "", "</details>", "", "No built run recorded here for `models.new`.", ""]
    assert xychart.history_section(["models.new"], {}) == []  # a CI clone: no run history
    assert xychart.history_section([], {"models.churn": [{"auc": 0.8}]}) == []


def test_only_the_last_runs_are_drawn() -> None:
    runs = [{"auc": float(i)} for i in range(30)]
    chart = xychart.xychart("models.m", "auc", runs[-xychart.HISTORY_RUNS:])
    assert chart[-1] == "  line [" + ", ".join(f"{float(i)}" for i in range(10, 30)) + "]"
    assert xychart.history_section(["models.m"], {"models.m": runs})[2].endswith(": 20 built runs</summary>")
