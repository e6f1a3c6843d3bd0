"""Gates judged by a build: any node's `gates` (metric → rule, core.gates) on the metrics it
reported, or recorded, against the baseline lock that relative gates compare with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlmake.core import gates
from mlmake.core.errors import MlmakeError
from mlmake.core.graph import Graph
from mlmake.outputs.history import lock_at
from mlmake.state.lock import Lock


class Judge:
    """The gates of a build's nodes, judged against one baseline."""

    def __init__(self, graph: Graph, baseline: Lock, warn: Callable[[str], None]) -> None:
        self.graph, self.baseline, self.warn = graph, baseline, warn

    def failures(self, address: str, metrics: Mapping[str, Any]) -> str:
        """Why the node's gates fail on these metrics, or '' (a gate that passed unchecked, for
        want of a baseline value, says so as a warning)."""
        rules, against = self.graph.nodes[address].gates, self.metrics(address) or None
        for note in gates.notes(rules, metrics, against):
            self.warn(f"{address}: {note}")
        return "; ".join(gates.failures(rules, metrics, against))

    def metrics(self, address: str) -> dict[str, Any]:
        """The node's metrics in the baseline lock ({} when it has none there)."""
        entry = self.baseline.get(address)
        return dict(entry.metrics) if entry else {}


def baseline(root: Path, graph: Graph, rev: str | None) -> Lock:
    """The lock relative gates compare against: --baseline REV, else HEAD's when there is one."""
    if rev:
        return lock_at(root, rev)
    relative = any("baseline" in str(g) for d in graph.nodes.values() for g in d.gates.values())
    if not relative:
        return Lock()
    try:
        return lock_at(root, "HEAD")
    except MlmakeError:
        return Lock()  # no git history: relative gates say they were not checked
