"""The one decision per node that every command reads (plan, build, status, why, the
pull-request comment): from the recorded and current fingerprint components, an action
and its reasons. Fingerprints that differ are never fresh, and restoring from the run
cache is one of the actions, decided here, not re-decided by the builder. Pure given its
inputs: the graph, the lock, a hasher (the file system seam) and a cache."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final, Literal, Protocol

from mlmake.core import gates
from mlmake.core.columns import as_recorded
from mlmake.core.graph import Graph
from mlmake.core.kind import NodeDecl
from mlmake.core.plain import Json
from mlmake.planning.columns import column_uses, read_columns, upstream_hashes
from mlmake.planning.reasons import Reason, ReasonCode, diff, differences, explain
from mlmake.state.fingerprint import Components, Lineage, fingerprint
from mlmake.state.hashing import CodeDigest, Digest, env_hash, library_version
from mlmake.state.lock import Entry, Lock, with_entry
from mlmake.state.runcache import Hit, is_complete, onto

__all__ = ["Action", "Components", "Reason", "ReasonCode", "Decision", "Plan", "decide", "make_plan", "diff", "explain"]

Action = Literal["new", "build", "maybe", "restore", "check", "fresh", "absent", "remove"]
NEW: Final = "new"
BUILD: Final = "build"
MAYBE: Final = "maybe"  # waits for an upstream that will rebuild; rebuilds only if its output changes
RESTORE: Final = "restore"  # this fingerprint was built before: its outputs come from the cache
CHECK: Final = "check"  # up to date, but its gates changed: re-judged on the recorded metrics
FRESH: Final = "fresh"
ABSENT: Final = "absent"  # up to date by the lock, outputs not in this workspace
REMOVE: Final = "remove"
PENDING: tuple[Action, ...] = (NEW, BUILD, MAYBE, RESTORE, CHECK, REMOVE)


class Files(Protocol):
    """What planning needs from the file system."""

    def digest(self, rel: str) -> Digest: ...

    def source_digest(self, rel: str) -> Digest: ...

    def code_digest(self, rel: str) -> CodeDigest: ...


class Cache(Protocol):
    """What planning needs from the run cache and the DVC pointers (no data, no network)."""

    def hit(self, fingerprint: str) -> Hit | None: ...

    def restorable(self, address: str) -> bool: ...


class NoCache:
    """A cache that knows nothing: every stale node rebuilds."""

    def hit(self, fingerprint: str) -> Hit | None:
        return None

    def restorable(self, address: str) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class Decision:
    """One node's decision."""

    address: str
    kind: str
    action: Action
    reasons: tuple[Reason, ...] = ()
    fingerprint: str = ""
    components: Components = field(default_factory=Components)  # empty for a node to remove
    missing: tuple[str, ...] = ()  # outputs up to date by the lock but absent here
    restorable: bool = False  # absent outputs have DVC pointers: pull restores them
    cached: Hit | None = None  # RESTORE: the run-cache entry, its outputs mapped onto this node's paths
    gates: dict[str, str] = field(default_factory=dict)  # the node's gates now (judged, not fingerprinted)
    code_bytes: Mapping[str, str] = field(default_factory=dict)  # python code hashed by meaning → its bytes' hash


@dataclass(frozen=True, slots=True)
class Plan:
    """Every selected node's decision, in build order."""

    steps: tuple[Decision, ...]

    def count(self, *actions: Action) -> int:
        return sum(1 for s in self.steps if s.action in actions)

    @property
    def has_changes(self) -> bool:
        return any(s.action in PENDING for s in self.steps)

    def summary(self) -> str:
        build, maybe, fresh = self.count(NEW, BUILD), self.count(MAYBE), self.count(FRESH, ABSENT)
        parts = [f"{build} to build"]
        if self.count(RESTORE):
            parts.append(f"{self.count(RESTORE)} to restore from cache")
        if maybe:
            parts.append(f"{maybe} to check after upstream")
        if self.count(CHECK):
            parts.append(f"{self.count(CHECK)} to re-judge on recorded metrics")
        absent = self.count(ABSENT)
        parts.append(f"{fresh} up to date" + (f" ({absent} not in this workspace)" if absent else ""))
        if self.count(REMOVE):
            parts.append(f"{self.count(REMOVE)} to remove")
        return "Plan: " + ", ".join(parts) + "."


def components(decl: NodeDecl, graph: Graph, lock: Lock, files: Files,
               current: Mapping[str, str] | None = None) -> Components:
    """Everything that can change a node's output, as recorded in the lock; `current` holds
    the fingerprints already decided in this plan (the lock's stand in for the others)."""
    sources = graph.files[decl.address]
    code = set(decl.code)
    uses = column_uses(decl, graph)
    return Components(
        config=decl.config,
        params=decl.params,
        recipe=decl.recipe,
        libraries={name: library_version(name) for name in decl.libraries},
        inputs={p: files.source_digest(p).hash for p in sources if p not in code},
        code={p: files.code_digest(p).hash for p in sources if p in code},
        env={name: env_hash(name, os.environ.get(name)) for name in decl.env},
        upstream={u: upstream_hashes(lock.get(u), outs, uses.get(u)) for u, outs in graph.uses[decl.address].items()},
        lineage=_lineage(decl.address, graph, lock, current or {}) if decl.lineage else None,
    )


def code_bytes(decl: NodeDecl, graph: Graph, files: Files) -> dict[str, str]:
    """The bytes' hash of each python code file hashed by its meaning (not fingerprinted: it
    tells a reformat, which rebuilds nothing, from no change at all)."""
    code = set(decl.code)
    digests = {p: files.code_digest(p) for p in graph.files[decl.address] if p in code}
    return {p: d.bytes for p, d in digests.items() if d.bytes}


def _lineage(address: str, graph: Graph, lock: Lock, current: Mapping[str, str]) -> Lineage:
    """A node whose outputs record its name and every ancestor's fingerprint has them as inputs."""
    ancestors = sorted(graph.closure([address], down=False) - {address})
    return Lineage(address, {a: current.get(a) or _recorded(lock, a) for a in ancestors})


def _recorded(lock: Lock, address: str) -> str:
    entry = lock.get(address)
    return entry.fingerprint if entry else ""


def decide(decl: NodeDecl, graph: Graph, lock: Lock, files: Files, *, cache: Cache | None = None,
           pending: Iterable[str] = (), forced: bool = False, current: Mapping[str, str] | None = None) -> Decision:
    """The decision for one node, given which of its upstream nodes will rebuild."""
    step = _judge(decl, graph, lock, files, set(pending), forced, current)
    return _use_cache(_columns_awaited(step, decl, graph, lock), decl, cache or NoCache(), forced=forced)


def _columns_awaited(step: Decision, decl: NodeDecl, graph: Graph, lock: Lock) -> Decision:
    """A node waiting on upstream tables it reads by column names the columns it waits on."""
    if step.action != MAYBE:
        return step
    uses = column_uses(decl, graph)
    reasons = []
    for r in step.reasons:
        read = read_columns(lock.get(r.subject), uses.get(r.subject)) if r.code == "upstream_pending" else []
        reasons.append(replace(r, new=list(read)) if read else r)
    return replace(step, reasons=tuple(reasons))


def _judge(decl: NodeDecl, graph: Graph, lock: Lock, files: Files, pending: set[str], forced: bool,
           current: Mapping[str, str] | None) -> Decision:
    comps = components(decl, graph, lock, files, current)
    fp = fingerprint(comps)
    entry = lock.get(decl.address)
    step = Decision(decl.address, decl.kind, FRESH, (), fp, comps, gates=dict(decl.gates),
                    code_bytes=code_bytes(decl, graph, files))
    if entry is None:
        return _with(step, NEW, Reason("new"))
    if forced:
        return _with(step, BUILD, Reason("forced"))
    changes = [] if entry.fingerprint == fp else _changes(entry, comps, decl)
    reasons = [r for r in changes if r.code != "upstream" or r.subject not in pending]
    waiting = [u for u in graph.uses[decl.address] if u in pending]
    if reasons:
        return _with(step, BUILD, *reasons)
    if waiting:
        return _with(step, MAYBE, *(Reason("upstream_pending", u) for u in sorted(waiting)))
    return _reformatted(_check_gates(_check_outputs(step, decl, entry, files), entry), entry)


def _changes(entry: Entry, comps: Components, decl: NodeDecl) -> list[Reason]:
    """Why fingerprints differ: named reasons, or the recorded and current fingerprints."""
    return differences(entry.components, comps, decl) or [Reason("fingerprint", "", entry.fingerprint,
                                                                  fingerprint(comps))]


def _with(step: Decision, action: Action, *reasons: Reason) -> Decision:
    return replace(step, action=action, reasons=tuple(reasons))


def _check_outputs(step: Decision, decl: NodeDecl, entry: Entry, files: Files) -> Decision:
    if set(entry.outputs) != set(decl.outputs):  # recorded for other paths (an older mlmake's restore)
        return _with(step, BUILD, Reason("outputs_moved", "", ", ".join(sorted(entry.outputs)) or "-",
                                         ", ".join(decl.outputs)))
    missing: list[str] = []
    for out in decl.outputs:
        now = files.digest(out)
        if not now.exists:
            missing.append(out)
        elif now.hash != entry.outputs[out].get("hash"):
            return _with(step, BUILD, Reason("output_modified", out))
    return replace(step, action=ABSENT, missing=tuple(missing)) if missing else step


def _reformatted(step: Decision, entry: Entry) -> Decision:
    """An up-to-date node whose python code changed in form only says so (and the build
    records the new bytes, as a clean build would)."""
    if step.action not in (FRESH, ABSENT, CHECK):
        return step
    notes = [Reason("code_reformatted", p, entry.code_bytes[p], now) for p, now in sorted(step.code_bytes.items())
             if entry.code_bytes.get(p, now) != now]
    return replace(step, reasons=step.reasons + tuple(notes)) if notes else step


def _check_gates(step: Decision, entry: Entry) -> Decision:
    """Gates that changed since the node was recorded are re-judged on its recorded metrics."""
    if step.action not in (FRESH, ABSENT) or entry.gates == step.gates:
        return step
    return _with(step, CHECK, *gate_reasons(entry.gates, step.gates, entry.metrics))


def gate_reasons(old: Mapping[str, str], new: Mapping[str, str], metrics: Mapping[str, Json]) -> list[Reason]:
    """One reason per changed gate, saying how the gate now judges the recorded metrics."""
    out: list[Reason] = []
    for metric in sorted(set(old) | set(new)):
        before, after = old.get(metric), new.get(metric)
        if after is None:
            out.append(Reason("gate_removed", metric, before))
        elif before != after:
            code: ReasonCode = "gate" if before is not None else "gate_added"
            out.append(Reason(code, metric, before, after, note=verdict(metric, after, metrics)))
    return out


def verdict(metric: str, rule: str, metrics: Mapping[str, Json]) -> str:
    """`re-checked, passes` or why not, on recorded metrics; a relative gate needs the build's baseline."""
    try:
        gate = gates.parse_gate(metric, rule)
    except ValueError as exc:
        return f"invalid: {exc}"
    if gate.relative:
        return "re-checked by the build against its baseline"
    found = gates.measure(metric, metrics)
    judged = gates.judge(gate, found.value, None, found.where)
    return "re-checked, passes" if judged.passed else "re-checked, fails: " + judged.message.split(": ", 1)[-1]


def make_plan(graph: Graph, lock: Lock, files: Files, targets: Iterable[str] = (), *,
              force: bool = False, downstream: bool = False, cache: Cache | None = None) -> Plan:
    """Every selected node's decision in build order, plus lock entries to remove."""
    targets = list(targets)
    cache = cache or NoCache()
    selected = graph.select(targets, downstream=downstream)
    # --force rebuilds the targets (everything when none), not what they read
    named = {graph.resolve_target(t) for t in targets} if targets else set(selected)
    forced = named if force else set()
    pending: set[str] = set()
    current: dict[str, str] = {}
    steps: list[Decision] = []
    for address in selected:
        step = decide(graph.nodes[address], graph, lock, files, cache=cache, pending=pending,
                      forced=address in forced, current=current)
        if step.action in (NEW, BUILD, MAYBE):
            pending.add(address)
        if step.action == RESTORE and step.cached is not None:  # its known outputs decide its readers
            lock = with_entry(lock, address, _restored_entry(step, step.cached))
        current[address] = step.fingerprint
        steps.append(step)
    if not targets:
        steps += [Decision(a, e.kind, REMOVE, (Reason("removed"),)) for a, e in sorted(lock.nodes.items())
                  if a not in graph.nodes]
    return Plan(tuple(steps))


def _use_cache(step: Decision, decl: NodeDecl, cache: Cache, *, forced: bool) -> Decision:
    """A stale node whose fingerprint was built before becomes a restore into its own paths."""
    if step.missing:  # up to date (or re-judged) by the lock, not in this workspace
        restorable = cache.restorable(step.address)
        return replace(step, restorable=restorable, cached=None if restorable else _hit(step, decl, cache))
    if step.action not in (NEW, BUILD) or forced:
        return step
    hit = _hit(step, decl, cache)
    if hit is None:
        return step
    return replace(step, action=RESTORE, reasons=step.reasons + (Reason("cached", step.fingerprint[:8]),),
                   cached=hit)


def _hit(step: Decision, decl: NodeDecl, cache: Cache) -> Hit | None:
    """The cache entry of the step's fingerprint, its outputs renamed to the node's declared ones."""
    hit = cache.hit(step.fingerprint)
    if hit is None or not is_complete(hit):
        return None
    return onto(hit, decl.outputs)


def _restored_entry(step: Decision, hit: Hit) -> Entry:
    outputs = {p: as_recorded(o) for p, o in hit.outputs.items()}
    return Entry(fingerprint=step.fingerprint, kind=step.kind, components=step.components, outputs=outputs,
                 metrics=hit.metrics, gates=dict(step.gates), code_bytes=dict(step.code_bytes))
