"""The metric history of each changed model in the pull-request comment, as mermaid
`xychart-beta` charts (GitHub draws mermaid itself: no image to host). One chart per metric,
its values the metrics the model's built runs recorded, oldest first, written exactly
(Python's shortest round-trip form), so a reviewer's tooltip shows the recorded number."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

HISTORY_RUNS = 20  # the last runs drawn per model

Runs = Sequence[Mapping[str, float]]  # a model's built runs' numeric metrics, oldest first


def history_section(changed: Sequence[str], history: Mapping[str, Runs]) -> list[str]:
    """Markdown lines: per changed model, its metrics over its recorded runs (folded). None when no
    changed model has a run recorded here (a CI clone: the run history is local to .mlmake/)."""
    drawn = [a for a in changed if history.get(a)]
    if not drawn:
        return []
    lines = ["#### Metric history", ""]
    for address in drawn:
        runs = list(history[address])[-HISTORY_RUNS:]
        lines += [f"<details><summary><code>{address}</code>: {len(runs)} built run{'s' if len(runs) != 1 else ''}"
                  "</summary>", ""]
        for metric in sorted({m for run in runs for m in run}):
            lines += ["```mermaid", *xychart(address, metric, runs), "```", ""]
        lines += ["</details>", ""]
    if len(drawn) < len(changed):
        lines += ["No built run recorded here for " + ", ".join(f"`{a}`" for a in changed if a not in drawn) + ".", ""]
    return lines


def xychart(address: str, metric: str, runs: Runs) -> list[str]:
    """One metric over the runs that recorded it, as an xychart-beta diagram."""
    points = [(n, run[metric]) for n, run in enumerate(runs, start=1) if metric in run]
    labels = ", ".join(f'"{n}"' for n, _ in points)
    values = ", ".join(repr(float(v)) for _, v in points)
    return ["xychart-beta", f'  title "{address}: {metric}"', f'  x-axis "run" [{labels}]', f'  y-axis "{metric}"',
            f"  line [{values}]"]
