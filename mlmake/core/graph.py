"""The project as a DAG of nodes addressed `section.name`, checked for unknown
references, shared outputs and cycles. Plain dicts here; networkx only where a
command needs its algorithms (it costs ~100 ms to import)."""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from mlmake.core import codedeps, registry
from mlmake.core.errors import Diagnostic, MlmakeError, SpecError, did_you_mean
from mlmake.core.kind import NodeDecl, Ref
from mlmake.core.source import Document, NodeParams
from mlmake.core.spec import Project


@dataclass(frozen=True)
class Graph:
    """Nodes in a deterministic topological order, with what each one reads."""

    nodes: dict[str, NodeDecl]
    uses: dict[str, dict[str, tuple[str, ...]]]  # node → upstream node → its outputs read
    files: dict[str, tuple[str, ...]]  # node → workspace files read that no node produces

    def upstream(self, address: str) -> tuple[str, ...]:
        return tuple(self.uses[address])

    def downstream(self, address: str) -> tuple[str, ...]:
        return self._readers.get(address, ())

    @cached_property
    def _readers(self) -> dict[str, tuple[str, ...]]:
        readers: dict[str, list[str]] = {}
        for address, ups in self.uses.items():
            for up in ups:
                readers.setdefault(up, []).append(address)
        return {a: tuple(r) for a, r in readers.items()}

    def closure(self, start: Iterable[str], *, down: bool) -> set[str]:
        """The start nodes and all their ancestors (or descendants)."""
        seen: set[str] = set()
        todo = list(start)
        while todo:
            a = todo.pop()
            if a not in seen:
                seen.add(a)
                todo.extend(self.downstream(a) if down else self.upstream(a))
        return seen

    def select(self, targets: Iterable[str], *, downstream: bool = False) -> list[str]:
        """Targets (all nodes if none) with what they need, in build order."""
        chosen = [self.resolve_target(t) for t in targets]
        if not chosen:
            return list(self.nodes)
        wanted = self.closure(self.closure(chosen, down=True), down=False) if downstream \
            else self.closure(chosen, down=False)
        return [a for a in self.nodes if a in wanted]

    def resolve_target(self, target: str) -> str:
        """`models.churn` or a bare `churn` when it is unique."""
        if target in self.nodes:
            return target
        matches = [a for a in self.nodes if a.split(".", 1)[1] == target]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise MlmakeError(f"target '{target}' is ambiguous: {', '.join(matches)}")
        hint = did_you_mean(target, list(self.nodes) + [a.split(".", 1)[1] for a in self.nodes])
        raise MlmakeError(f"unknown target '{target}'" + (f" ({hint})" if hint else ""))


def build_graph(project: Project) -> Graph:
    """Declare every node and connect them; raise SpecError listing every problem."""
    decls: dict[str, NodeDecl] = {}
    node_params = project.doc.node_params if project.doc else {}
    with codedeps.session(project.root):  # nodes that run the same code read and parse it once
        known = registry.registry()
        for address, kind_name in project.kinds.items():
            section, _, name = address.partition(".")
            decl = known.by_name(kind_name).declare(project, project.section(section)[name])
            used = node_params.get(decl.address, NodeParams())
            decls[decl.address] = replace(decl, params=used.param_values(), param_keys=used.param_keys(),
                                          templates=dict(used.templates), env=_env(project, section, name))
    errors: list[Diagnostic] = []
    located = _Locator(project.doc)
    owners = _output_owners(decls, errors, located)
    uses: dict[str, dict[str, tuple[str, ...]]] = {}
    files: dict[str, tuple[str, ...]] = {}
    for address, decl in decls.items():
        uses[address], files[address] = _connect(decl, decls, owners, errors, located)
    if not errors:
        _check_cycles(decls, uses, errors, located)
    if errors:
        raise SpecError(errors)
    order = _topological(uses, list(decls))
    return Graph({a: decls[a] for a in order}, {a: uses[a] for a in order}, {a: files[a] for a in order})


def _env(project: Project, section: str, name: str) -> tuple[str, ...]:
    """The environment variables an item declares (`env:`, which every kind takes), sorted."""
    data = project.doc.data if project.doc is not None else {}
    item = (data.get(section) or {}).get(name)
    return tuple(sorted(set(item.get("env") or ()))) if isinstance(item, dict) else ()


class _Locator:
    def __init__(self, doc: Document | None) -> None:
        self.doc = doc

    def error(self, key: tuple[Any, ...], message: str, hint: str = "", fallback: Any = None) -> Diagnostic:
        if self.doc is not None:
            return self.doc.diagnostic(key, message, hint)
        from mlmake.core.source import format_path

        return Diagnostic(fallback, format_path(key), message, hint)


def _output_owners(decls: dict[str, NodeDecl], errors: list[Diagnostic], at: _Locator) -> dict[str, str]:
    owners: dict[str, str] = {}
    inside: dict[str, str] = {}  # every folder that holds a declared output → its producer
    for address, decl in decls.items():
        for out in decl.outputs:
            norm = os.path.normpath(out)
            parents = _parents(norm)
            clash = owners.get(norm) or inside.get(norm) or next((owners[p] for p in parents if p in owners), None)
            if clash and clash != address:
                key = tuple(address.split(".", 1))
                errors.append(at.error(key, f"output '{out}' is also written by {clash}",
                                       "each file or folder must have one producer", decl.span))
            owners[norm] = address
            for p in parents:
                inside.setdefault(p, address)
    return owners


def _parents(path: str) -> list[str]:
    out = []
    while (path := os.path.dirname(path)) not in ("", os.sep):
        out.append(path)
    return out


def _connect(decl: NodeDecl, decls: dict[str, NodeDecl], owners: dict[str, str],
             errors: list[Diagnostic], at: _Locator) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    uses: dict[str, tuple[str, ...]] = {}
    for ref in decl.refs:
        target = resolve_ref(ref, decls, decl.address)
        if target is None:
            errors.append(at.error(ref.key, _unknown(ref), _suggest(ref, decls), decl.span))
        elif target == decl.address:
            errors.append(at.error(ref.key, f"{decl.address} refers to itself", "", decl.span))
        else:
            uses[target] = decls[target].outputs
    free: list[str] = []
    for path in decl.inputs + decl.code:
        owner = _owner(path, owners)
        if owner is None or owner == decl.address:
            free.append(path)
        else:
            uses[owner] = tuple(sorted(set(uses.get(owner, ())) | {_owning_output(path, decls[owner])}))
    return uses, tuple(free)


def _owner(path: str, owners: dict[str, str]) -> str | None:
    norm = os.path.normpath(path)
    while norm and norm != ".":
        if norm in owners:
            return owners[norm]
        norm = os.path.dirname(norm)
    return None


def _owning_output(path: str, decl: NodeDecl) -> str:
    norm = os.path.normpath(path)
    for out in decl.outputs:
        o = os.path.normpath(out)
        if norm == o or norm.startswith(o + os.sep):
            return out
    return path


def resolve_ref(ref: Ref, decls: dict[str, NodeDecl], referrer: str) -> str | None:
    """The address a reference names: the first of its sections holding the name (not the referrer
    itself when another fits), or None."""
    if not ref.sections:
        return ref.name if ref.name in decls else None
    # features.t may read datasets.t: a bare name never resolves to the node itself when another fits
    found = [f"{s}.{ref.name}" for s in ref.sections if f"{s}.{ref.name}" in decls]
    return next((a for a in found if a != referrer), found[0] if found else None)


def _unknown(ref: Ref) -> str:
    if not ref.sections:
        return f"unknown node '{ref.name}'"
    what = " or ".join(registry.registry().word(s) for s in ref.sections)
    return f"unknown {what} '{ref.name}'"


def _suggest(ref: Ref, decls: dict[str, NodeDecl]) -> str:
    if not ref.sections:
        return did_you_mean(ref.name, decls)
    names = [a.split(".", 1)[1] for a in decls if a.split(".", 1)[0] in ref.sections]
    return did_you_mean(ref.name, names) or (f"known: {', '.join(sorted(names))}" if names else "")


def _check_cycles(decls: dict[str, NodeDecl], uses: dict[str, dict[str, tuple[str, ...]]],
                  errors: list[Diagnostic], at: _Locator) -> None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for root in sorted(uses):
        if root in state:
            continue
        stack: list[tuple[str, list[str]]] = [(root, sorted(uses[root]))]
        path = [root]
        state[root] = 1
        while stack:
            node, pending = stack[-1]
            if not pending:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            nxt = pending.pop()
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                first = decls[cycle[0]]
                key = tuple(cycle[0].split(".", 1))
                errors.append(at.error(key, "dependency cycle: " + " → ".join(cycle),
                                       "remove one of these references", first.span))
                return
            if nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(uses[nxt])))


def _topological(uses: dict[str, dict[str, tuple[str, ...]]], declared: list[str]) -> list[str]:
    """Kahn's algorithm; among ready nodes the one declared first goes first."""
    rank = {a: i for i, a in enumerate(declared)}
    waiting = {a: len(up) for a, up in uses.items()}
    children: dict[str, list[str]] = {a: [] for a in uses}
    for a, up in uses.items():
        for u in up:
            children[u].append(a)
    ready = [(rank[a], a) for a, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, a = heapq.heappop(ready)
        order.append(a)
        for c in children[a]:
            waiting[c] -= 1
            if waiting[c] == 0:
                heapq.heappush(ready, (rank[c], c))
    return order


def to_networkx(graph: Graph) -> Any:
    """The graph as a networkx DiGraph (edges point from upstream to downstream)."""
    import networkx as nx

    g = nx.DiGraph()
    for address, decl in graph.nodes.items():
        g.add_node(address, kind=decl.kind)
        for up in graph.uses[address]:
            g.add_edge(up, address)
    return g
