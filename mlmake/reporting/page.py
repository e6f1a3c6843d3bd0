"""The report as one HTML page that opens offline: styles, the charts' specifications and the
Vega, Vega-Lite and vega-embed JavaScript all inline. Its Content-Security-Policy lets the page
load nothing from anywhere (connect, image, font and frame sources are 'none'), so a report
opened from an email or a CI artifact makes no request. The same inputs give the same bytes."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from mlmake import __version__
from mlmake.reporting import charts
from mlmake.reporting.gather import ContractView, ModelView, NodeView, Report
from mlmake.reporting.graphview import graph_svg

# 'unsafe-eval': Vega compiles its expressions with Function(); nothing else is allowed in
CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
       "img-src data:; font-src 'none'; connect-src 'none'; frame-src 'none'; base-uri 'none'; form-action 'none'")

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{background:#24292f;color:#fff;padding:16px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9d1d9}main{padding:8px 28px 40px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 18px;margin:16px 0}
h2{font-size:17px;margin:4px 0 10px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;margin:6px 0 10px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:14px}.chart{min-width:300px;min-height:120px}
.state{padding:1px 7px;border-radius:9px;font-size:12px;color:#fff}
.built{background:#2da44e}.stale{background:#bf8700}.missing{background:#8c959f}.failed{background:#cf222e}
.removed{background:#6e7781}.note{color:#57606a;font-style:italic}.fail{color:#cf222e;font-weight:600}
.chart-error{color:#cf222e;white-space:pre-wrap}pre.document{white-space:pre-wrap;background:#f6f8fa;padding:8px}
"""

# each chart is drawn as SVG; a chart that fails says so in its place (and on the console)
RENDER = """
const specs = JSON.parse(document.getElementById('mlmake-specs').textContent);
Promise.all(Object.entries(specs).map(([id, spec]) => {
  const el = document.getElementById(id);
  return vegaEmbed(el, spec, {renderer: 'svg', actions: false})
    .then(() => { el.dataset.rendered = 'true'; })
    .catch((err) => {
      el.dataset.rendered = 'error';
      el.innerHTML = '<p class="chart-error"></p>';
      el.firstChild.textContent = 'chart failed: ' + err;
      console.error('mlmake report: chart ' + id + ' failed: ' + err);
    });
})).then(() => { document.body.dataset.charts = 'done'; });
"""


def render(report: Report, javascript: str) -> tuple[str, dict[str, charts.Spec]]:
    """The page, and its charts by element id (what the page embeds, for tests and golden files)."""
    specs: dict[str, charts.Spec] = {}
    body = [_header(report), _graph(report.nodes)]
    body += [_model(m, report.base, specs) for m in report.models]
    body += [_contracts(report.contracts)] if report.contracts else []
    page = "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{escape(report.project)}: mlmake report</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        *body, "</main>", f'<script type="application/json" id="mlmake-specs">{_json_in_html(specs)}</script>',
        f"<script>{_script_safe(javascript)}</script>", f"<script>{RENDER}</script>", "</body>", "</html>", ""])
    return page, specs


def _json_in_html(data: Any) -> str:
    """JSON that cannot end its <script> element early."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _script_safe(code: str) -> str:
    return code.replace("</script", "<\\/script")


def _header(report: Report) -> str:
    models = ", ".join(m.address for m in report.models) or "none"
    base = f" · overlaid with <code>{escape(report.base)}</code>" if report.base else ""
    return (f"<header><h1>{escape(report.project)}</h1><p>mlmake {__version__} report · models: "
            f"{escape(models)}{base}</p></header><main>")


def _state(state: str) -> str:
    return f'<span class="state {escape(state)}">{escape(state)}</span>'


def _graph(nodes: list[NodeView]) -> str:
    rows = "".join(f"<tr><td><code>{escape(n.address)}</code></td><td>{escape(n.kind)}</td><td>{_state(n.state)}</td>"
                   f"<td>{escape(n.reason)}</td></tr>" for n in nodes)
    return (f'<section id="graph"><h2>Graph</h2>{graph_svg(nodes)}'
            f"<table><tr><th>node</th><th>kind</th><th>state</th><th>why</th></tr>{rows}</table></section>")


def _model(model: ModelView, base: str | None, specs: dict[str, charts.Spec]) -> str:
    parts = [f'<section class="model" id="{escape(model.address)}"><h2>{escape(model.address)} '
             f"{_state(model.state)}</h2>"]
    parts += [f'<p class="note">{escape(n)}</p>' for n in model.notes]
    parts += [_metrics_table(model.metrics), _gates_table(model)]
    parts += [_slice_table(column, values) for column, values in sorted(model.slices.items())]
    cells = []
    for title, spec in charts.model_charts(model, base):
        chart_id = f"chart-{len(specs) + 1}"
        specs[chart_id] = spec
        cells.append(f'<div class="chart" id="{chart_id}" data-model="{escape(model.address)}" '
                     f'data-title="{escape(title)}"></div>')
    if cells:
        parts.append(f'<div class="charts">{"".join(cells)}</div>')
    parts += [f"<details open><summary><b>{escape(d.title)}</b> <code>{escape(d.source)}</code></summary>"
              f'<pre class="document">{escape(d.text)}</pre></details>' for d in model.documents]
    return "".join(parts) + "</section>"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else escape(str(value))
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _metrics_table(metrics: dict[str, Any]) -> str:
    if not metrics:
        return ""
    head = "".join(f"<th>{escape(m)}</th>" for m in sorted(metrics))
    cells = "".join(f'<td class="num">{_number(metrics[m])}</td>' for m in sorted(metrics))
    return f"<h3>Held-out metrics</h3><table><tr>{head}</tr><tr>{cells}</tr></table>"


def _gates_table(model: ModelView) -> str:
    if not model.gates:
        return ""
    rows = "".join(
        f'<tr><td><code>{escape(g.rule)}</code></td><td class="num">{_number(g.value)}</td>'
        f'<td class="num">{_number(g.baseline)}</td>'
        f'<td class="{"verdict fail" if g.result == "FAIL" else "verdict"}">{escape(g.result)}</td></tr>'
        for g in model.gates)
    return f"<h3>Gates</h3><table><tr><th>gate</th><th>value</th><th>baseline</th><th>result</th></tr>{rows}</table>"


def _slice_table(column: str, values: dict[str, dict[str, float]]) -> str:
    """Each value's metrics, and the gap (largest minus smallest) of each metric across values."""
    metrics = sorted({m for scores in values.values() for m in scores if m != "rows"})
    head = "".join(f"<th>{escape(m)}</th>" for m in metrics)
    rows = "".join(f"<tr><td>{escape(label)}</td><td class=\"num\">{_number(scores.get('rows'))}</td>"
                   + "".join(f'<td class="num">{_number(scores.get(m))}</td>' for m in metrics) + "</tr>"
                   for label, scores in sorted(values.items()))
    gaps = "".join(f'<td class="num">{_number(_gap(values, m))}</td>' for m in metrics)
    return (f"<h3>Metrics by {escape(column)}</h3><table><tr><th>{escape(column)}</th><th>rows</th>{head}</tr>"
            f"{rows}<tr><th>gap</th><td></td>{gaps}</tr></table>")


def _gap(values: dict[str, dict[str, float]], metric: str) -> float | None:
    scores = [s[metric] for s in values.values() if isinstance(s.get(metric), (int, float))]
    return float(max(scores) - min(scores)) if len(scores) > 1 else None


def _contracts(contracts: list[ContractView]) -> str:
    parts = ['<section id="contracts"><h2>Data contracts</h2>']
    for c in contracts:
        parts.append(f"<h3><code>{escape(c.address)}</code> {_state(c.state)}</h3>")
        if c.failure:
            parts.append(f'<p class="fail">the contract failed on its last run:</p><pre>{escape(c.failure)}</pre>')
        if not c.contract:
            parts.append('<p class="note">no contract result in this workspace: build it first</p>')
            continue
        parts.append(f"<p>{escape(str(c.contract.get('source', '')))}: {_number(c.contract.get('rows'))} rows, "
                     "the contract holds</p>" if not c.failure else "")
        parts.append(_columns_table(c.contract.get("columns") or []))
        checks = "".join(f"<tr><td>rows {escape(str(k.get('rows')))}</td><td class=\"num\">{_number(k.get('value'))}"
                         f"</td><td>{'pass' if k.get('passed') else 'FAIL'}</td></tr>"
                         for k in c.contract.get("checks") or [])
        if checks:
            parts.append(f"<table><tr><th>check</th><th>value</th><th>result</th></tr>{checks}</table>")
    return "".join(parts) + "</section>"


def _columns_table(columns: list[dict[str, Any]]) -> str:
    keys = sorted({k for c in columns for k in c if k not in ("name", "declared")})
    head = "".join(f"<th>{escape(k)}</th>" for k in keys)
    rows = "".join(f"<tr><td><code>{escape(str(c.get('name')))}</code></td><td>{'yes' if c.get('declared') else ''}"
                   "</td>" + "".join(f"<td>{_number(c.get(k))}</td>" for k in keys) + "</tr>" for c in columns)
    return f"<table><tr><th>column</th><th>declared</th>{head}</tr>{rows}</table>"
