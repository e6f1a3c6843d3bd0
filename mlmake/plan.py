"""Decides, per node, whether it is up to date and why not. Pure given its
inputs: the graph, the lock and a hasher (the file system seam)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from mlmake.fingerprint import Digest, canonical, hash_json, library_version
from mlmake.graph import Graph
from mlmake.kinds.base import NodeDecl
from mlmake.lock import Entry, Lock, with_entry
from mlmake.runcache import Hit, is_complete

NEW, BUILD, MAYBE, FRESH, ABSENT, REMOVE = "new", "build", "maybe", "fresh", "absent", "remove"
RESTORE = "restore"  # stale against the lock, but this fingerprint was built before: restored from cache
PENDING = (NEW, BUILD, MAYBE, RESTORE, REMOVE)


class Files(Protocol):
    """What planning needs from the file system."""

    def digest(self, rel: str) -> Digest: ...

    def source_digest(self, rel: str) -> Digest: ...


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
class Reason:
    """Why a node is not up to date: a code, what it concerns, and old/new values."""

    code: str
    subject: str = ""
    old: Any = None
    new: Any = None

    def text(self) -> str:
        s, old, new = self.subject, _show(self.old), _show(self.new)
        return {
            "new": "new node",
            "forced": "forced",
            "config": _change(s, self.old, self.new),
            "param": _change(s, self.old, self.new),
            "config_added": f"{s} added" + ("" if _is_long(self.new) else f" ({new})"),
            "config_removed": f"{s} removed" + ("" if _is_long(self.old) else f" (was {old})"),
            "recipe": f"recipe of {s} {old} → {new}",
            "library": f"{s} {old} → {new}",
            "input": f"{s} changed",
            "input_added": f"{s} added",
            "input_removed": f"{s} no longer read",
            "input_missing": f"{s} is missing",
            "code": f"code {s} changed" if _is_code(s) else f"{s} changed",
            "code_added": f"code {s} added" if _is_code(s) else f"{s} added",
            "code_missing": f"code {s} is missing",
            "upstream": f"upstream {s} changed",
            "upstream_added": f"now depends on {s}",
            "upstream_removed": f"no longer depends on {s}",
            "upstream_pending": f"upstream {s} will rebuild; rebuilds only if its output changes",
            "output_missing": f"output {s} missing",
            "output_modified": f"output {s} modified since it was built",
            "removed": "no longer in mlproject.yaml",
            "cached": f"built before (fingerprint {s}): restore from the cache",
        }.get(self.code, f"{self.code} {s}".strip())

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "subject": self.subject, "old": self.old, "new": self.new, "text": self.text()}


@dataclass(frozen=True)
class Step:
    """One node's decision."""

    address: str
    kind: str
    action: str
    reasons: tuple[Reason, ...] = ()
    fingerprint: str = ""
    components: dict[str, Any] = field(default_factory=dict)
    missing: tuple[str, ...] = ()  # outputs up to date by the lock but absent here
    restorable: bool = False  # absent outputs have DVC pointers: pull restores them


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]

    def count(self, *actions: str) -> int:
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
        absent = self.count(ABSENT)
        parts.append(f"{fresh} up to date" + (f" ({absent} not in this workspace)" if absent else ""))
        if self.count(REMOVE):
            parts.append(f"{self.count(REMOVE)} to remove")
        return "Plan: " + ", ".join(parts) + "."


def components(decl: NodeDecl, graph: Graph, lock: Lock, files: Files) -> dict[str, Any]:
    """Everything that can change a node's output, as recorded in the lock."""
    sources = graph.files[decl.address]
    code = set(decl.code)
    return {
        "config": decl.config,
        "params": decl.params,
        "recipe": decl.recipe,
        "libraries": {name: library_version(name) for name in decl.libraries},
        "inputs": {p: files.source_digest(p).hash for p in sources if p not in code},
        "code": {p: files.source_digest(p).hash for p in sources if p in code},
        "upstream": {u: _upstream_hashes(lock.get(u), outs) for u, outs in graph.uses[decl.address].items()},
    }


def _upstream_hashes(entry: Entry | None, outputs: tuple[str, ...]) -> dict[str, str]:
    recorded = entry.outputs if entry else {}
    return {o: str(recorded.get(o, {}).get("hash", "")) for o in outputs}


def decide(decl: NodeDecl, graph: Graph, lock: Lock, files: Files, *,
           pending: Iterable[str] = (), forced: bool = False) -> Step:
    """The decision for one node, given which of its upstream nodes will rebuild."""
    comps = components(decl, graph, lock, files)
    fp = hash_json(comps)
    entry = lock.get(decl.address)
    step = Step(decl.address, decl.kind, FRESH, (), fp, comps)
    if entry is None:
        return _with(step, NEW, Reason("new"))
    if forced:
        return _with(step, BUILD, Reason("forced"))
    changes = [] if entry.fingerprint == fp else explain(diff(entry.components, comps, decl.kind), decl)
    reasons = [r for r in changes if r.code != "upstream" or r.subject not in pending]
    waiting = [u for u in graph.uses[decl.address] if u in pending]
    if reasons:
        return _with(step, BUILD, *reasons)
    if waiting:
        return _with(step, MAYBE, *(Reason("upstream_pending", u) for u in sorted(waiting)))
    return _check_outputs(step, decl, entry, files)


def _with(step: Step, action: str, *reasons: Reason) -> Step:
    return Step(step.address, step.kind, action, tuple(reasons), step.fingerprint, step.components, step.missing)


def _check_outputs(step: Step, decl: NodeDecl, entry: Entry, files: Files) -> Step:
    missing: list[str] = []
    for out in decl.outputs:
        now = files.digest(out)
        if not now.exists:
            missing.append(out)
        elif now.hash != entry.outputs.get(out, {}).get("hash"):
            return _with(step, BUILD, Reason("output_modified", out))
    if missing:
        return Step(step.address, step.kind, ABSENT, (), step.fingerprint, step.components, tuple(missing))
    return step


def explain(reasons: list[Reason], decl: NodeDecl) -> list[Reason]:
    """Drop a config change that changed global params fully explain: where the values differ,
    the key was written `${params.x}` and renders to the old and the new value."""
    old = {r.subject.removeprefix("params."): r.old for r in reasons if r.code == "param"}
    if not old:
        return reasons
    return [r for r in reasons if not (r.code == "config" and _explained(r, old, decl))]


def _explained(reason: Reason, old_params: dict[str, Any], decl: NodeDecl) -> bool:
    before, after, key = reason.old, reason.new, reason.subject
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        pairs = [(f"{key}.{i}", b, a) for i, (b, a) in enumerate(zip(before, after, strict=True)) if b != a]
    else:
        pairs = [(key, before, after)]
    return bool(pairs) and all(_renders(decl, k, b, a, old_params) for k, b, a in pairs)


def _renders(decl: NodeDecl, key: str, before: Any, after: Any, old_params: dict[str, Any]) -> bool:
    template = decl.templates.get(key)
    if template is None:
        return False
    then = {**decl.params, **old_params}
    return _render(template, then) == _text(before) and _render(template, decl.params) == _text(after)


def _render(template: str, params: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).strip().removeprefix("params.")
        return _text(params.get(name, match.group(0)))

    return re.sub(r"\$\{([^}]*)\}", value, template.replace("$${", "\0")).replace("\0", "${")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def diff(old: dict[str, Any], new: dict[str, Any], kind: str = "") -> list[Reason]:
    """Reasons between recorded and current components, most specific first."""
    reasons = _diff_params(old.get("params", {}), new.get("params", {}))
    reasons += _diff_config(old.get("config", {}), new.get("config", {}), "")
    if old.get("recipe") != new.get("recipe"):
        reasons.append(Reason("recipe", kind, old.get("recipe"), new.get("recipe")))
    for name in sorted(set(old.get("libraries", {})) | set(new.get("libraries", {}))):
        a, b = old.get("libraries", {}).get(name), new.get("libraries", {}).get(name)
        if a != b:
            reasons.append(Reason("library", name, a, b))
    reasons += _diff_files(old.get("inputs", {}), new.get("inputs", {}), "input")
    reasons += _diff_files(old.get("code", {}), new.get("code", {}), "code")
    reasons += _diff_upstream(old.get("upstream", {}), new.get("upstream", {}))
    return reasons


def _diff_params(old: dict[str, Any], new: dict[str, Any]) -> list[Reason]:
    out = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            out.append(Reason("config_added", f"params.{name}", None, new[name]))
        elif name not in new:
            out.append(Reason("config_removed", f"params.{name}", old[name], None))
        elif canonical(old[name]) != canonical(new[name]):
            out.append(Reason("param", f"params.{name}", old[name], new[name]))
    return out


def _diff_config(old: Any, new: Any, prefix: str) -> list[Reason]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[Reason] = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(Reason("config_added", path, None, new[key]))
            elif key not in new:
                out.append(Reason("config_removed", path, old[key], None))
            else:
                out += _diff_config(old[key], new[key], path)
        return out
    return [] if canonical(old) == canonical(new) else [Reason("config", prefix, old, new)]


def _diff_files(old: dict[str, str], new: dict[str, str], code: str) -> list[Reason]:
    out: list[Reason] = []
    for path in sorted(set(old) | set(new)):
        if path not in old:
            out.append(Reason(f"{code}_added", path))
        elif path not in new:
            out.append(Reason("input_removed", path))
        elif not new[path]:
            out.append(Reason(f"{code}_missing", path))
        elif old[path] != new[path]:
            out.append(Reason(code, path, old[path], new[path]))
    return out


def _diff_upstream(old: dict[str, Any], new: dict[str, Any]) -> list[Reason]:
    out: list[Reason] = []
    for address in sorted(set(old) | set(new)):
        if address not in old:
            out.append(Reason("upstream_added", address))
        elif address not in new:
            out.append(Reason("upstream_removed", address))
        elif old[address] != new[address]:
            out.append(Reason("upstream", address))
    return out


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
    steps: list[Step] = []
    for address in selected:
        step = decide(graph.nodes[address], graph, lock, files, pending=pending, forced=address in forced)
        step, lock = _use_cache(step, lock, cache, forced=address in forced)
        if step.action in (NEW, BUILD, MAYBE):
            pending.add(address)
        steps.append(step)
    if not targets:
        steps += [Step(a, e.kind, REMOVE, (Reason("removed"),)) for a, e in sorted(lock.nodes.items())
                  if a not in graph.nodes]
    return Plan(tuple(steps))


def _use_cache(step: Step, lock: Lock, cache: Cache, *, forced: bool) -> tuple[Step, Lock]:
    """A stale node built before becomes a restore; its known outputs decide its readers."""
    if step.action == ABSENT and cache.restorable(step.address):
        return Step(step.address, step.kind, ABSENT, (), step.fingerprint, step.components, step.missing,
                    True), lock
    if step.action not in (NEW, BUILD) or forced:
        return step, lock
    hit = cache.hit(step.fingerprint)
    if hit is None or not is_complete(hit):
        return step, lock
    outputs = {p: {"hash": o.get("hash", ""), "size": o.get("size", 0)} for p, o in hit.outputs.items()}
    entry = Entry(step.fingerprint, step.kind, step.components, outputs, hit.metrics)
    restored = Step(step.address, step.kind, RESTORE, step.reasons + (Reason("cached", step.fingerprint[:8]),),
                    step.fingerprint, step.components)
    return restored, with_entry(lock, step.address, entry)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "), default=str)


_CODE = (".py", ".sh", ".r", ".R", ".sql", ".ipynb", ".js", ".ts", ".jl", ".rb", ".pl")


def _is_code(path: str) -> bool:
    """A cmd dep is code when it looks like a script; otherwise it is data the command reads."""
    return path.endswith(_CODE)


def _is_long(value: Any) -> bool:
    return isinstance(value, str) and ("\n" in value or len(value) > 80)


def _change(subject: str, old: Any, new: Any) -> str:
    """`params.max_depth 6 → 8`; a long or multi-line text (a query) just `sql changed`."""
    if _is_long(old) or _is_long(new):
        return f"{subject} changed"
    return f"{subject} {_show(old)} → {_show(new)}"
