"""A model card (card.json's data) as markdown: one section per part, tables where it lists."""

from __future__ import annotations

from typing import Any

from mlmake.core.gates import show_number


def card_markdown(card: dict[str, Any]) -> str:
    """The card as a markdown document."""
    model = card["model"]
    lines = [f"# Model card: {model['address'].partition('.')[2]}", ""]
    if model.get("description"):
        lines += [model["description"].strip(), ""]
    lines += [f"- Model: `{model['address']}` ({model.get('kind')}, {model.get('task')})",
              f"- Fingerprint: `{model.get('fingerprint')}`", f"- Card: `{card['card']}`", ""]
    for title, key in (("Intended use", "intended_use"), ("Limitations", "limitations")):
        lines += [f"## {title}", "", (card.get(key) or "Not stated.").strip(), ""]
    lines += _data(card["data"]) + _features(card["features"]) + _training(card["training"])
    lines += _metrics(card["metrics"]) + _slices(card["slices"]) + _gates(card["gates"])
    lines += _registry(card["registry"]) + _approvals(card["approvals"])
    lines += ["## Lineage", "", "| node | fingerprint |", "|---|---|"]
    lines += [f"| `{a}` | `{fp}` |" for a, fp in card["lineage"].items()]
    return "\n".join(lines) + "\n"


def _data(datasets: list[dict[str, Any]]) -> list[str]:
    lines = ["## Data", ""]
    for data in datasets:
        lines += [f"### `{data['address']}`", "", "| file | hash |", "|---|---|"]
        lines += [f"| `{path}` | `{digest}` |" for path, digest in data["files"].items()]
        if data["schema"]:
            lines += ["", "| column | contract |", "|---|---|"]
            lines += [f"| `{column}` | {_rules(rules)} |" for column, rules in data["schema"].items()]
        if data["checks"]:
            lines += ["", *(f"- check: {_rules(check)}" for check in data["checks"])]
        lines.append("")
    return lines


DEFAULTS = {"unique": False, "allow_non_finite": False}  # a contract's defaults: not worth a word


def _rules(rules: Any) -> str:
    if not isinstance(rules, dict):
        return _cell(rules)
    first = {k: rules[k] for k in ("type",) if k in rules}
    rest = {k: v for k, v in rules.items() if k not in first and DEFAULTS.get(k) is not v}
    return ", ".join(f"{k} {_cell(v)}" for k, v in {**first, **rest}.items())


def _features(features: dict[str, Any]) -> list[str]:
    key = ", ".join(f"`{k}`" for k in features["key"]) or "none"
    target = features.get("target") or {}
    classes = features.get("classes")
    lines = ["## Features", "", f"From `{features['source']}` (key: {key}); target `{target.get('name')}` "
             f"({target.get('type')}" + (f"; classes {_cell(classes)}" if classes else "") + ").", "",
             "| input | type |", "|---|---|"]
    for item in features["inputs"]:
        categories = item.get("categories")
        lines.append(f"| `{item['name']}` | {item['type']}" + (f" ({', '.join(map(str, categories))})"
                                                                if categories else "") + " |")
    return [*lines, ""]


def _training(training: dict[str, Any]) -> list[str]:
    lines = ["## Training", "", f"{training.get('n_train')} rows to train, {training.get('n_test')} held out "
             f"(split: {_rules(training['split'])}).", "", "| param | value |", "|---|---|"]
    lines += [f"| `{k}` | {_cell(v)} |" for k, v in sorted(training["params"].items())]
    return [*lines, ""]


def _metrics(metrics: dict[str, Any]) -> list[str]:
    lines = ["## Metrics (held-out rows)", "", "| metric | value |", "|---|---|"]
    lines += [f"| {m} | {_number(v)} |" for m, v in metrics.items()]
    return [*lines, ""]


def _slices(slices: dict[str, Any]) -> list[str]:
    if not slices:
        return []
    lines = ["## Slices", ""]
    for column, found in slices.items():
        values = found["values"]
        metrics = sorted({m for v in values.values() for m in v if m != "rows"})
        lines += [f"### By `{column}`", "", "| value | rows | " + " | ".join(metrics) + " |",
                  "|---|---|" + "---|" * len(metrics)]
        for value, scores in values.items():
            cells = " | ".join(_number(scores.get(m)) for m in metrics)
            lines.append(f"| {_cell(value)} | {scores.get('rows')} | {cells} |")
        lines += ["", "| metric | largest gap | between |", "|---|---|---|"]
        lines += [f"| {m} | {_number(g['gap'])} | {g['between']} |" for m, g in found["gaps"].items()]
        lines.append("")
    return lines


def _gates(gates: list[dict[str, Any]]) -> list[str]:
    if not gates:
        return ["## Gates", "", "None.", ""]
    lines = ["## Gates", "", "| gate | value | result |", "|---|---|---|"]
    for gate in gates:
        where = f" ({gate['slice']})" if gate.get("slice") else ""
        lines.append(f"| `{gate['gate']}` | {_number(gate['value'])}{where} | {gate['result']} |")
    return [*lines, ""]


def _registry(registry: dict[str, Any]) -> list[str]:
    lines = ["## Registry", ""]
    if registry["versions"]:
        stages = ", ".join(registry["stages"]) or "none"
        lines.append(f"This build is registered as {', '.join(registry['versions'])}; the stages it holds: {stages}.")
    else:
        lines.append("This build is not registered (`mlmake register MODEL`).")
    if registry["model_stages"]:
        lines += ["", "| stage | version now |", "|---|---|"]
        lines += [f"| {stage} | {version} |" for stage, version in registry["model_stages"].items()]
    return [*lines, ""]


def _approvals(approvals: list[dict[str, Any]]) -> list[str]:
    if not approvals:
        return ["## Approvals", "", "None recorded.", ""]
    lines = ["## Approvals", "", "| deploy target | by | at | fingerprint | |", "|---|---|---|---|---|"]
    for a in approvals:
        state = "valid" if a["valid"] else "void (another fingerprint)"
        lines.append(f"| `{a['target']}` | {_cell(a['by'])} | {a['at']} | `{a['fingerprint']}` | {state} |")
    return [*lines, ""]


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, float):
        return f"{value:.4f}"
    return show_number(value) if isinstance(value, int) else str(value)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")
