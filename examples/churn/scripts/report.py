"""Write a short markdown summary of a model's metrics.json.

    python scripts/report.py build/models/churn_xgb/metrics.json build/report.md

The JSON has three keys: "metrics" (metric → value on the held-out split),
"slices" (column → value → metric → value) and "gates" (metric → its rule and
outcome). The reader is lenient about the exact shape of each entry, so the
report keeps working as mlmake's metrics file grows new fields.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    return str(value)


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return lines


def items(section: Any, name: str = "name") -> list[tuple[str, Any]]:
    """(name, entry) pairs from a mapping or from a list of records."""
    if isinstance(section, dict):
        return [(str(k), v) for k, v in section.items()]
    if isinstance(section, list):
        return [(str(e.get(name, e.get("metric", i))) if isinstance(e, dict) else str(i), e)
                for i, e in enumerate(section)]
    return []


def slice_tables(section: Any) -> list[tuple[str, Any]]:
    """(column, value → metrics) pairs; a list of {column, value, metric…} records is grouped."""
    if isinstance(section, list):
        grouped: dict[str, dict[str, Any]] = {}
        for rec in section:
            if isinstance(rec, dict) and "column" in rec:
                rest = {k: v for k, v in rec.items() if k not in ("column", "value")}
                grouped.setdefault(str(rec["column"]), {})[str(rec.get("value"))] = rest.get("metrics", rest)
        return list(grouped.items())
    return items(section)


def gate_row(metric: str, gate: Any) -> list[Any]:
    if not isinstance(gate, dict):
        return [metric, "", "", gate]
    rule = gate.get("rule", gate.get("condition", gate.get("expr", "")))
    value = gate.get("value", gate.get("actual", ""))
    passed = next((gate[k] for k in ("passed", "ok", "pass", "status") if k in gate), "")
    if isinstance(passed, bool):
        passed = "pass" if passed else "**FAIL**"
    return [gate.get("metric", metric), rule, value, passed]


def render(data: dict[str, Any], source: str) -> str:
    name = data.get("model") or Path(source).parent.name or "model"
    out = [f"# Model report: {name}", ""]

    out += ["## Held-out metrics", ""]
    out += table(["metric", "value"], [[k, v] for k, v in items(data.get("metrics", {}))]) + [""]

    gates = items(data.get("gates", {}))
    if gates:
        out += ["## Gates", ""]
        out += table(["metric", "rule", "value", "result"], [gate_row(k, g) for k, g in gates]) + [""]

    for column, by_value in slice_tables(data.get("slices", {})):
        rows = items(by_value, "value")
        if not rows:
            continue
        names = sorted({m for _, v in rows if isinstance(v, dict) for m in v})
        out += [f"## By {column}", ""]
        out += table([column, *names], [[val, *(v.get(m, "") if isinstance(v, dict) else v for m in names)]
                                        for val, v in rows]) + [""]
    return "\n".join(out)


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: report.py METRICS_JSON OUT_MD", file=sys.stderr)
        return 2
    source, target = sys.argv[1], Path(sys.argv[2])
    with open(source, encoding="utf-8") as f:
        data = json.load(f)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(render(data, source), encoding="utf-8")
    os.replace(tmp, target)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
