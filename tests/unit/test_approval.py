"""mlmake/planning/approval.py: the plan hash, and where a target that needs approvals stands."""

from __future__ import annotations

from dataclasses import replace

from mlmake.core.graph import Graph
from mlmake.core.kind import NodeDecl
from mlmake.planning.approval import plan_hash, refusal, standing
from mlmake.planning.plan import Decision, Plan, Reason
from mlmake.state.approvals import Approval, with_approval
from mlmake.state.fingerprint import Components
from mlmake.state.lock import Entry, Lock

MODEL = Decision("models.m", "model", "build", (Reason("new"),), "a" * 32)
TARGET = Decision("deploy.api", "http", "maybe", (), "b" * 32)


def test_the_plan_hash_covers_addresses_actions_and_fingerprints_only() -> None:
    plan = Plan((MODEL, TARGET))
    assert plan_hash(plan) == plan_hash(Plan((MODEL, TARGET)))
    assert plan_hash(plan) == plan_hash(Plan((replace(MODEL, reasons=(Reason("forced"),)), TARGET)))
    assert len({plan_hash(plan), plan_hash(Plan((replace(MODEL, action="fresh"), TARGET))),
                plan_hash(Plan((replace(MODEL, fingerprint="c" * 32), TARGET))),
                plan_hash(Plan((TARGET, MODEL)))}) == 4


def approval(by: str, fingerprint: str) -> Approval:
    return Approval(by, "2026-12-01T21:00:00Z", "models.m", fingerprint, "p" * 32, {"auc": 0.8})


def test_only_approvals_of_the_fingerprint_as_built_count() -> None:
    given = with_approval({}, "deploy.api", approval("Ada <a@x>", "old"))
    given = with_approval(given, "deploy.api", approval("Bob <b@x>", "new"))
    given = with_approval(given, "deploy.api", approval("Bob <b@x>", "new"))  # twice: still one person
    found = standing("deploy.api", 2, "models.m", "new", given)
    assert ([a.by for a in found.given], [a.by for a in found.void], found.approved) == (
        ["Bob <b@x>"], ["Ada <a@x>"], False)
    assert found.lines() == ["deploy.api: 1 of 2 approval(s) of models.m new (Bob <b@x>)",
                             "  void: Ada <a@x> approved old at 2026-12-01T21:00:00Z; the model changed since"]


def test_a_build_refuses_a_target_short_of_approvals() -> None:
    nodes = {"models.m": NodeDecl("models.m", "model", None, {}),
             "deploy.api": NodeDecl("deploy.api", "http", None, {}, approvals=1)}
    graph = Graph(nodes, {"models.m": {}, "deploy.api": {"models.m": ()}}, {"models.m": (), "deploy.api": ()})
    lock = Lock({"models.m": Entry("f" * 32, "model", Components())})
    assert refusal(graph, "deploy.api", lock, {}) == (
        "needs 1 approval(s) of models.m as built (fingerprint ffffffff), has 0: review it, run "
        "`mlmake approve deploy.api` and commit approvals.yaml")
    assert refusal(graph, "deploy.api", lock, {"deploy.api": (approval("Ada <a@x>", "f" * 32),)}) == ""
    assert refusal(graph, "models.m", lock, {}) == ""


def test_a_target_following_the_registry_needs_approval_of_the_version_it_delivers() -> None:
    registry = {"stage": "production", "version": "v0.0.2", "fingerprint": "9" * 32}
    nodes = {"models.m": NodeDecl("models.m", "model", None, {}),
             "deploy.api": NodeDecl("deploy.api", "http", None, {"model": "m@production", "registry": registry},
                                    approvals=1)}
    graph = Graph(nodes, {"models.m": {}, "deploy.api": {}}, {"models.m": (), "deploy.api": ()})
    lock = Lock({"models.m": Entry("f" * 32, "model", Components())})
    assert refusal(graph, "deploy.api", lock, {}) == (
        "needs 1 approval(s) of models.m as built (fingerprint 99999999), has 0: review it, run "
        "`mlmake approve deploy.api` and commit approvals.yaml")
    assert refusal(graph, "deploy.api", lock, {"deploy.api": (approval("Ada <a@x>", "9" * 32),)}) == ""
    assert refusal(graph, "deploy.api", lock, {"deploy.api": (approval("Ada <a@x>", "f" * 32),)}) != ""
