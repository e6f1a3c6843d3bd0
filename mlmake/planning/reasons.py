"""Why a node is not up to date: reason codes with old → new values, and the diff of
recorded against current fingerprint components that produces them. Every component
that differs yields a reason; `component` and `fingerprint` are the floor for what no
finer diff names, so fingerprints that differ are never explained away into silence."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from mlmake.core.columns import changed_columns
from mlmake.core.kind import NodeDecl
from mlmake.core.plain import Json
from mlmake.state.fingerprint import Components, Lineage
from mlmake.state.hashing import UNSET, canonical

ReasonCode = Literal[
    "new", "forced", "config", "param", "config_added", "config_removed", "recipe", "library",
    "input", "input_added", "input_removed", "input_missing", "code", "code_added", "code_missing", "code_reformatted",
    "env", "env_added", "env_removed",
    "upstream", "upstream_added", "upstream_removed", "upstream_pending", "lineage",
    "output_missing", "output_modified", "outputs_moved", "removed", "cached",
    "gate", "gate_added", "gate_removed", "component", "fingerprint", "stage",
]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a node is not up to date: a code, what it concerns, and old/new values."""

    code: ReasonCode
    subject: str = ""
    old: Json = None
    new: Json = None
    note: str = ""  # a gate's verdict on the recorded metrics; the columns of an upstream that changed

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
            "code_reformatted": f"code {s} reformatted, same meaning",
            "env": _env_change(s, self.old, self.new),
            "env_added": f"env {s} now declared",
            "env_removed": f"env {s} no longer declared",
            "upstream": f"upstream {s} changed" + (f": {self.note}" if self.note else ""),
            "upstream_added": f"now depends on {s}",
            "upstream_removed": f"no longer depends on {s}",
            "upstream_pending": f"upstream {s} will rebuild; rebuilds only if "
                                + (f"columns {', '.join(map(str, self.new))} change" if isinstance(self.new, list)
                                   else "its output changes"),
            "output_missing": f"output {s} missing",
            "output_modified": f"output {s} modified since it was built",
            "removed": "no longer in mlproject.yaml",
            "cached": f"built before (fingerprint {s}): restore from the cache",
            "outputs_moved": f"outputs recorded at {old}, declared at {new}",
            "lineage": f"upstream {s} fingerprint changed",  # old → new in why and the JSON plan
            "gate": f"gate {s} {old} → {new}: {self.note}",
            "gate_added": f"gate {s} {new} added: {self.note}",
            "gate_removed": f"gate {s} {old} removed",
            "stage": f"{s} moved {old} → {new}",  # a deploy target following a stage
            "component": f"fingerprint changed: {s} {_brief(self.old)} → {_brief(self.new)}",
            "fingerprint": f"fingerprint changed: recorded {_short(self.old)}, current {_short(self.new)}",
        }.get(self.code, f"{self.code} {s}".strip())

    def to_dict(self) -> dict[str, Json]:
        note = {"note": self.note} if self.note else {}
        return {"code": self.code, "subject": self.subject, "old": self.old, "new": self.new, **note,
                "text": self.text()}


def differences(old: Components, new: Components, decl: NodeDecl) -> list[Reason]:
    """Every reason between recorded and current components; never empty when they differ."""
    reasons = explain(diff(old, new, decl.kind), decl)
    reasons += [Reason("component", name, old.value(name), new.value(name))
                for name in sorted(set(old.extra) | set(new.extra))
                if canonical(old.value(name)) != canonical(new.value(name))]
    if reasons:
        return reasons
    # what no finer diff names (a component the recorded entry lacks): the components whole
    return [Reason("component", name, old.value(name), new.value(name)) for name in _BY_DIFF
            if canonical(old.value(name)) != canonical(new.value(name))]


_BY_DIFF = ("params", "config", "recipe", "libraries", "inputs", "code", "env", "upstream", "lineage")  # diff's order


def explain(reasons: list[Reason], decl: NodeDecl) -> list[Reason]:
    """Drop a config change that changed global params fully explain: where the values differ,
    the key was written `${params.x}` and renders to the old and the new value."""
    old = {r.subject.removeprefix("params."): r.old for r in reasons if r.code == "param"}
    if not old:
        return reasons
    return [r for r in reasons if not (r.code == "config" and _explained(r, old, decl))]


def _explained(reason: Reason, old_params: dict[str, Json], decl: NodeDecl) -> bool:
    before, after, key = reason.old, reason.new, reason.subject
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        pairs = [(f"{key}.{i}", b, a) for i, (b, a) in enumerate(zip(before, after, strict=True)) if b != a]
    else:
        pairs = [(key, before, after)]
    return bool(pairs) and all(_renders(decl, k, b, a, old_params) for k, b, a in pairs)


def _renders(decl: NodeDecl, key: str, before: Json, after: Json, old_params: dict[str, Json]) -> bool:
    template = decl.templates.get(key)
    if template is None:
        return False
    then = {**decl.params, **old_params}
    return _render(template, then) == _text(before) and _render(template, decl.params) == _text(after)


def _render(template: str, params: Mapping[str, Json]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).strip().removeprefix("params.")
        return _text(params.get(name, match.group(0)))

    return re.sub(r"\$\{([^}]*)\}", value, template.replace("$${", "\0")).replace("\0", "${")


def _text(value: Json) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def diff(old: Components, new: Components, kind: str = "") -> list[Reason]:
    """Reasons between recorded and current components, most specific first."""
    reasons = _diff_params(old.params, new.params)
    old_config, new_config = dict(old.config), dict(new.config)
    reasons += _stage_moved(old_config, new_config)
    reasons += _diff_config(old_config, new_config, "")
    if old.value("recipe") != new.value("recipe"):
        reasons.append(Reason("recipe", kind, old.value("recipe"), new.value("recipe")))
    for name in sorted(set(old.libraries) | set(new.libraries)):
        a, b = old.libraries.get(name), new.libraries.get(name)
        if a != b:
            reasons.append(Reason("library", name, a, b))
    reasons += _diff_files(old.inputs, new.inputs, "input")
    reasons += _diff_files(old.code, new.code, "code")
    reasons += _diff_env(old.env, new.env)
    reasons += _diff_upstream(old.upstream, new.upstream)
    reasons += _diff_lineage(old.lineage, new.lineage)
    return reasons


def _stage_moved(old: dict[str, Json], new: dict[str, Json]) -> list[Reason]:
    """A deploy target following a stage whose version moved: one reason, `production moved
    v1.2.0 → v1.3.0`, for what its `registry` config says in detail (taken out of both)."""
    a, b = old.get("registry"), new.get("registry")
    if not (isinstance(a, dict) and isinstance(b, dict)) or a.get("stage") != b.get("stage") or not b.get("stage"):
        return []
    del old["registry"], new["registry"]
    if canonical(a) == canonical(b):
        return []
    if a.get("version") == b.get("version"):  # the same name, another build: a re-created tag
        return [Reason("stage", str(b["stage"]), f"{a.get('version')} ({_short(a.get('fingerprint'))})",
                       f"{b.get('version')} ({_short(b.get('fingerprint'))})")]
    return [Reason("stage", str(b["stage"]), a.get("version"), b.get("version"))]


def _diff_params(old: Mapping[str, Json], new: Mapping[str, Json]) -> list[Reason]:
    out = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            out.append(Reason("config_added", f"params.{name}", None, new[name]))
        elif name not in new:
            out.append(Reason("config_removed", f"params.{name}", old[name], None))
        elif canonical(old[name]) != canonical(new[name]):
            out.append(Reason("param", f"params.{name}", old[name], new[name]))
    return out


def _diff_config(old: Json, new: Json, prefix: str) -> list[Reason]:
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


_FILE_CODES: dict[str, tuple[ReasonCode, ReasonCode, ReasonCode]] = {
    "input": ("input", "input_added", "input_missing"), "code": ("code", "code_added", "code_missing")}


def _diff_files(old: Mapping[str, str], new: Mapping[str, str], kind: str) -> list[Reason]:
    changed, added, missing = _FILE_CODES[kind]
    out: list[Reason] = []
    for path in sorted(set(old) | set(new)):
        if path not in old:
            out.append(Reason(added, path))
        elif path not in new:
            out.append(Reason("input_removed", path))
        elif not new[path]:
            if old[path]:  # missing then and now (an optional input never written) is no difference
                out.append(Reason(missing, path))
        elif old[path] != new[path]:
            out.append(Reason(changed, path, old[path], new[path]))
    return out


def _diff_env(old: Mapping[str, str], new: Mapping[str, str]) -> list[Reason]:
    """Declared variables by the hashes of their values: the plan never shows a value."""
    out: list[Reason] = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            out.append(Reason("env_added", name, None, new[name]))
        elif name not in new:
            out.append(Reason("env_removed", name, old[name], None))
        elif old[name] != new[name]:
            out.append(Reason("env", name, old[name], new[name]))
    return out


def _env_change(name: str, old: Json, new: Json) -> str:
    if old == UNSET:
        return f"env {name} set (was unset)"
    if new == UNSET:
        return f"env {name} unset (was set)"
    return f"env {name} changed"


def _diff_upstream(old: Mapping[str, Mapping[str, str]], new: Mapping[str, Mapping[str, str]]) -> list[Reason]:
    out: list[Reason] = []
    for address in sorted(set(old) | set(new)):
        if address not in old:
            out.append(Reason("upstream_added", address))
        elif address not in new:
            out.append(Reason("upstream_removed", address))
        elif old[address] != new[address]:
            out.append(Reason("upstream", address, note=changed_columns(old[address], new[address])))
    return out


def _diff_lineage(old: Lineage | None, new: Lineage | None) -> list[Reason]:
    """A node that records its own name and its ancestors' fingerprints (a deploy manifest)."""
    out: list[Reason] = []
    before_node, after_node = old.node if old else None, new.node if new else None
    if before_node != after_node:
        out.append(Reason("config", "name", before_node, after_node))
    before, after = old.upstream if old else {}, new.upstream if new else {}
    for address in sorted(set(before) | set(after)):
        if before.get(address) != after.get(address):
            out.append(Reason("lineage", address, before.get(address), after.get(address)))
    return out


def _brief(value: Json) -> str:
    """A component's value on one short line."""
    text = _show(value) if value is not None else "-"
    return text if len(text) <= 40 and "\n" not in text else text.replace("\n", " ")[:37] + "..."


def _short(value: Json) -> str:
    """A fingerprint as its first eight characters (`-` when there is none)."""
    return str(value)[:8] if value else "-"


def _show(value: Json) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(", ", ": "), default=str)


_CODE = (".py", ".sh", ".r", ".R", ".sql", ".ipynb", ".js", ".ts", ".jl", ".rb", ".pl")


def _is_code(path: str) -> bool:
    """A cmd dep is code when it looks like a script; otherwise it is data the command reads."""
    return path.endswith(_CODE)


def _is_long(value: Json) -> bool:
    return isinstance(value, str) and ("\n" in value or len(value) > 80)


def _change(subject: str, old: Json, new: Json) -> str:
    """`params.max_depth 6 → 8`; a long or multi-line text (a query) just `sql changed`."""
    if _is_long(old) or _is_long(new):
        return f"{subject} changed"
    return f"{subject} {_show(old)} → {_show(new)}"
