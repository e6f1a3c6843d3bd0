"""The report's charts as Vega-Lite specifications: plain data, one pure function per chart,
the numbers inline (a spec never names a URL to load). A model's chart overlays the base's
curve, coloured by `build`, when `--base` found one.

Written as dicts rather than through altair: the specs are small and fixed, a golden file holds
each one exactly, and the report needs no library to make them (vl-convert checks them in the
tests by compiling them, and the browser draws them)."""

from __future__ import annotations

from typing import Any

from mlmake.reporting.gather import ModelView

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"  # an identifier: never fetched
SIZE = {"width": 260, "height": 220}
IMPORTANCE_TOP = 20

Spec = dict[str, Any]


def model_charts(model: ModelView, base: str | None) -> list[tuple[str, Spec]]:
    """(title, spec) of every chart a model's records can draw, in the order the report shows them."""
    curves, old = model.curves, model.base_curves
    label = f"base {base}" if base else "base"
    color = _color(["this build", label] if old else ["this build"])
    charts: list[tuple[str, Spec]] = []
    if curves.get("roc"):
        charts.append(("ROC curve", curve("ROC curve", _overlay(curves, old, "roc", label), "fpr", "tpr",
                                          "false positive rate", "true positive rate", color, diagonal=True)))
    if curves.get("pr"):
        charts.append(("Precision-recall curve", curve("Precision-recall curve", _overlay(curves, old, "pr", label),
                                                       "recall", "precision", "recall", "precision", color)))
    if curves.get("confusion"):
        charts.append(("Confusion matrix", confusion(curves["confusion"])))
    if curves.get("scatter"):
        charts.append(("Predicted vs actual", predicted_vs_actual(curves["scatter"])))
        charts.append(("Residuals", residuals(curves["scatter"])))
    if curves.get("calibration"):
        charts.append(("Calibration", calibration(_overlay(curves, old, "calibration", label), curves["task"], color)))
    if model.importance:
        charts.append(("Feature importance", importance(model.importance)))
    for column, values in sorted(model.slices.items()):
        charts.append((f"Metrics by {column}", slices(column, values)))
    if model.history:
        charts.append(("Metrics over runs", history(model.history)))
    return charts


def _overlay(curves: dict[str, Any], old: dict[str, Any], key: str, label: str) -> list[dict[str, Any]]:
    rows = [{**p, "build": "this build"} for p in curves.get(key) or []]
    return rows + [{**p, "build": label} for p in old.get(key) or []]


def _base(title: str, values: list[dict[str, Any]]) -> Spec:
    return {"$schema": SCHEMA, "title": title, "data": {"values": values}, **SIZE}


def _color(builds: list[str]) -> dict[str, Any]:
    """This build in blue, the base in orange."""
    return {"field": "build", "type": "nominal", "title": None,
            "scale": {"domain": builds, "range": ["#1f77b4", "#ff7f0e"][:len(builds)]}, "legend": {"orient": "bottom"}}


def _diagonal() -> Spec:
    return {"data": {"values": [{"x": 0, "y": 0}, {"x": 1, "y": 1}]},
            "mark": {"type": "line", "strokeDash": [4, 4], "color": "#999"},
            "encoding": {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y", "type": "quantitative"}}}


def curve(title: str, values: list[dict[str, Any]], x: str, y: str, x_title: str, y_title: str,
          color: dict[str, Any], *, diagonal: bool = False) -> Spec:
    """A ROC or precision-recall curve, one line per build."""
    line = {"mark": {"type": "line", "interpolate": "step-after" if x == "recall" else "linear", "point": False},
            "encoding": {"x": {"field": x, "type": "quantitative", "title": x_title, "scale": {"domain": [0, 1]}},
                         "y": {"field": y, "type": "quantitative", "title": y_title, "scale": {"domain": [0, 1]}},
                         "color": color, "order": {"field": "threshold", "sort": "descending"},
                         "tooltip": [{"field": "threshold", "type": "quantitative"}, {"field": x}, {"field": y}]}}
    spec = _base(title, values)
    spec["layer"] = [_diagonal(), line] if diagonal else [line]
    return spec


def confusion(values: list[dict[str, Any]]) -> Spec:
    """Counts of actual by predicted class, with the count written in each cell."""
    axis = {"type": "nominal", "sort": None}
    encoding = {"x": {"field": "predicted", **axis, "title": "predicted"},
                "y": {"field": "actual", **axis, "title": "actual"}}
    spec = _base("Confusion matrix", values)
    spec["layer"] = [
        {"mark": "rect", "encoding": {**encoding, "color": {"field": "count", "type": "quantitative",
                                                           "scale": {"scheme": "blues"}, "legend": None},
                                      "tooltip": [{"field": "actual"}, {"field": "predicted"}, {"field": "count"}]}},
        {"mark": {"type": "text", "fontSize": 13},
         "encoding": {**encoding, "text": {"field": "count", "type": "quantitative"},
                      "color": {"condition": {"test": "datum.count > 0", "value": "#111"}, "value": "#999"}}},
    ]
    return spec


def calibration(values: list[dict[str, Any]], task: str, color: dict[str, Any]) -> Spec:
    """Observed against predicted, per bin; the diagonal is perfect calibration."""
    probability = task != "regression"
    names = ({"binary": ("predicted probability", "observed rate"),
              "multiclass": ("confidence of the predicted class", "accuracy")}.get(task)
             or ("mean predicted value", "mean actual value"))
    scale = {"scale": {"domain": [0, 1]}} if probability else {"scale": {"zero": False}}
    line = {"mark": {"type": "line", "point": True},
            "encoding": {"x": {"field": "predicted", "type": "quantitative", "title": names[0], **scale},
                         "y": {"field": "observed", "type": "quantitative", "title": names[1], **scale},
                         "color": color,
                         "tooltip": [{"field": "predicted"}, {"field": "observed"}, {"field": "rows"}]}}
    spec = _base("Calibration", values)
    if probability:
        spec["layer"] = [_diagonal(), line]
    else:
        spec["layer"] = [_identity("predicted", "observed"), line]
    return spec


def _identity(x: str, y: str) -> Spec:
    """The line y = x across the data's range (for values that are not probabilities)."""
    return {"transform": [{"aggregate": [{"op": "min", "field": x, "as": "lo"}, {"op": "max", "field": x, "as": "hi"}]},
                          {"fold": ["lo", "hi"], "as": ["end", "v"]}],
            "mark": {"type": "line", "strokeDash": [4, 4], "color": "#999"},
            "encoding": {"x": {"field": "v", "type": "quantitative"}, "y": {"field": "v", "type": "quantitative"}}}


def predicted_vs_actual(values: list[dict[str, Any]]) -> Spec:
    spec = _base("Predicted vs actual", values)
    spec["layer"] = [
        _identity("actual", "predicted"),
        {"mark": {"type": "point", "filled": True, "opacity": 0.5, "size": 18},
         "encoding": {"x": {"field": "actual", "type": "quantitative", "scale": {"zero": False}},
                      "y": {"field": "predicted", "type": "quantitative", "scale": {"zero": False}}}},
    ]
    return spec


def residuals(values: list[dict[str, Any]]) -> Spec:
    spec = _base("Residuals", values)
    spec["transform"] = [{"calculate": "datum.predicted - datum.actual", "as": "residual"}]
    spec["layer"] = [
        {"mark": {"type": "rule", "color": "#999", "strokeDash": [4, 4]}, "encoding": {"y": {"datum": 0}}},
        {"mark": {"type": "point", "filled": True, "opacity": 0.5, "size": 18},
         "encoding": {"x": {"field": "predicted", "type": "quantitative", "scale": {"zero": False}},
                      "y": {"field": "residual", "type": "quantitative", "title": "predicted - actual"}}},
    ]
    return spec


def importance(rows: list[dict[str, Any]]) -> Spec:
    """The features by average gain, largest first (the first IMPORTANCE_TOP)."""
    spec = _base("Feature importance", rows[:IMPORTANCE_TOP])
    spec["mark"] = "bar"
    spec["encoding"] = {"x": {"field": "gain", "type": "quantitative", "title": "average gain"},
                        "y": {"field": "feature", "type": "nominal", "sort": "-x", "title": None}}
    return spec


def slices(column: str, values: dict[str, dict[str, float]]) -> Spec:
    """Each metric per value of a slice column, a panel per metric (the gaps show as bar lengths)."""
    rows = [{"slice": label, "metric": metric, "value": score}
            for label, scores in sorted(values.items()) for metric, score in sorted(scores.items()) if metric != "rows"]
    spec = {"$schema": SCHEMA, "title": f"Metrics by {column}", "data": {"values": rows},
            "facet": {"row": {"field": "metric", "type": "nominal", "title": None}},
            "resolve": {"scale": {"x": "independent"}},
            "spec": {"width": SIZE["width"], "mark": "bar",
                     "encoding": {"x": {"field": "value", "type": "quantitative", "title": None},
                                  "y": {"field": "slice", "type": "nominal", "title": None},
                                  "tooltip": [{"field": "slice"}, {"field": "metric"}, {"field": "value"}]}}}
    return spec


def history(rows: list[dict[str, Any]]) -> Spec:
    """Each metric over the model's built runs, oldest first."""
    spec = _base("Metrics over runs", rows)
    spec["mark"] = {"type": "line", "point": True}
    spec["encoding"] = {"x": {"field": "run", "type": "ordinal", "title": "run (oldest first)"},
                        "y": {"field": "value", "type": "quantitative", "scale": {"zero": False}},
                        "color": {"field": "metric", "type": "nominal", "legend": {"orient": "bottom"}},
                        "tooltip": [{"field": "run_id"}, {"field": "metric"}, {"field": "value"}]}
    return spec
