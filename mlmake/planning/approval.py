"""Approvals bound to what was reviewed. A deploy target with `approval: {required: N}` is
delivered by a build only when N people have approved its model *as built*: an approval names
the model's fingerprint, and one given for another fingerprint is void. `plan` says where each
target stands; `build` refuses a target that is short (see `refusal`).

The plan hash is what `mlmake approve` records beside the fingerprint, so an approval says which
plan its approver saw (Atlantis binds an approval to a plan the same way): a blake3 digest of
each step's address, action and fingerprint, in plan order. It covers the decisions and what
they are about, nothing else: not the reasons' wording, not timings, not paths on this machine,
so the same sources and lock give the same hash on any machine."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mlmake.core.errors import MlmakeError
from mlmake.core.graph import Graph
from mlmake.planning.plan import ABSENT, CHECK, FRESH, MAYBE, NEW, RESTORE, Decision, Plan
from mlmake.state.approvals import Approval, Approvals, read_approvals, with_approval, write_approvals
from mlmake.state.hashing import hash_bytes
from mlmake.state.lock import Lock

BUILT = (FRESH, ABSENT, CHECK)  # the model is built as the file says: its lock entry is what is approved
SHORT = 8  # a fingerprint as messages show it


def plan_hash(plan: Plan) -> str:
    """The stable hash of a plan: each step's address, action and fingerprint, in order."""
    body = [[s.address, s.action, s.fingerprint] for s in plan.steps]
    return hash_bytes(json.dumps(body, separators=(",", ":")).encode("utf-8"))


def subject(graph: Graph, address: str) -> str | None:
    """The model a deploy target delivers (what its approvers approve)."""
    if followed := _followed(graph, address):
        return followed[0]
    return next((u for u in graph.upstream(address) if u.startswith("models.")), None)


def _followed(graph: Graph, address: str) -> tuple[str, str] | None:
    """A target following the registry (`model: NAME@STAGE`): the model and the fingerprint of the
    version it delivers, which is what its approvers approve (no model of the workspace)."""
    decl = graph.nodes.get(address)
    found = decl.config.get("registry") if decl else None
    if decl is None or not isinstance(found, dict) or not found.get("fingerprint"):
        return None
    return f"models.{str(decl.config['model']).partition('@')[0]}", str(found["fingerprint"])


@dataclass(frozen=True, slots=True)
class Standing:
    """Where one target that needs approvals stands."""

    target: str
    required: int
    model: str
    fingerprint: str  # the model's fingerprint as built, or as this plan will build it ('' if unknown)
    change: str  # '' when the model is built as the file says; else how the plan changes it
    given: tuple[Approval, ...]  # approvals of this fingerprint
    void: tuple[Approval, ...]  # approvals of another fingerprint

    @property
    def approved(self) -> bool:
        return len(self.given) >= self.required

    def lines(self) -> list[str]:
        """What plan prints about it: the count, who, and each void approval."""
        short = self.fingerprint[:SHORT]
        about = f"{self.model} {short}" if short else self.model
        about += f" ({self.change})" if self.change else ""
        who = f" ({', '.join(a.by for a in self.given)})" if self.given else ""
        out = [f"{self.target}: {len(self.given)} of {self.required} approval(s) of {about}{who}"]
        out += [f"  void: {a.by} approved {a.fingerprint[:SHORT]} at {a.at}; the model changed since"
                for a in self.void]
        return out


def standings(graph: Graph, plan: Plan, lock: Lock, approvals: Approvals) -> list[Standing]:
    """Each target of the plan that needs approvals, with its model as this plan leaves it."""
    steps = {s.address: s for s in plan.steps}
    out = []
    for step in plan.steps:
        model = subject(graph, step.address)
        required = graph.nodes[step.address].approvals if step.address in graph.nodes else 0
        if not required or model is None:
            continue
        followed = _followed(graph, step.address)
        fingerprint, change = (followed[1], "") if followed else _model_state(steps.get(model), lock, model)
        out.append(standing(step.address, required, model, fingerprint, approvals, change))
    return out


def standing(target: str, required: int, model: str, fingerprint: str, approvals: Approvals,
             change: str = "") -> Standing:
    given = approvals.get(target, ())
    valid = tuple(a for a in given if fingerprint and a.model == model and a.fingerprint == fingerprint)
    return Standing(target, required, model, fingerprint, change, valid,
                    tuple(a for a in given if a not in valid))


def _model_state(step: Decision | None, lock: Lock, model: str) -> tuple[str, str]:
    """The model's fingerprint after this plan, and '' or how the plan changes it."""
    entry = lock.get(model)
    if step is None or step.action in BUILT:
        return (entry.fingerprint if entry else ""), ""
    if step.action == NEW:
        return step.fingerprint, "not built yet"
    reasons = "; ".join(r.text() for r in step.reasons)
    if step.action == MAYBE:
        return "", f"may change: {reasons}"
    return step.fingerprint, f"{'to be restored' if step.action == RESTORE else 'to be rebuilt'}: {reasons}"


def refusal(graph: Graph, address: str, lock: Lock, approvals: Approvals) -> str:
    """Why a build must not deliver this target now ('' when approved or no approval is needed)."""
    required, model = graph.nodes[address].approvals, subject(graph, address)
    if not required or model is None:
        return ""
    entry, followed = lock.get(model), _followed(graph, address)
    fingerprint = followed[1] if followed else (entry.fingerprint if entry else "")
    found = standing(address, required, model, fingerprint, approvals)
    if found.approved:
        return ""
    void = (f" ({len(found.void)} void: given for another fingerprint of the model)" if found.void else "")
    return (f"needs {required} approval(s) of {model} as built (fingerprint {found.fingerprint[:SHORT]}), has "
            f"{len(found.given)}{void}: review it, run `mlmake approve {address}` and commit approvals.yaml")


def approve(root: Path, graph: Graph, plan: Plan, lock: Lock, address: str, by: str, at: str) -> Standing:
    """Record `by`'s approval of the target's model as built (the plan is the target's own), and
    where the target stands after it; MlmakeError when there is nothing built to approve."""
    model = subject(graph, address)
    if not graph.nodes[address].approvals or model is None:
        raise MlmakeError(f"{address} needs no approval: add `approval: {{required: 1}}` to it to require one")
    if followed := _followed(graph, address):  # a registered version: approved as registered
        return _record(root, graph, address, Approval(by, at, model, followed[1], plan_hash(plan)))
    step = next((s for s in plan.steps if s.address == model), None)
    entry = lock.get(model)
    if entry is None or step is None or step.action not in BUILT:
        why = "; ".join(r.text() for r in step.reasons) if step else "not built"
        raise MlmakeError(f"{model} is not built as the file says ({why}): an approval is of a model as "
                          f"built, so run `mlmake build {model}`, review it, then approve")
    return _record(root, graph, address, Approval(by, at, model, entry.fingerprint, plan_hash(plan),
                                                  dict(entry.scores())))


def _record(root: Path, graph: Graph, address: str, given: Approval) -> Standing:
    approvals = with_approval(read_approvals(root), address, given)
    write_approvals(root, approvals)
    return standing(address, graph.nodes[address].approvals, given.model, given.fingerprint, approvals)
