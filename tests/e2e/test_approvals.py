"""Approvals bound to the model as built, on the churn example: a deploy target with
`approval: {required: 1}` is refused by `build` until `mlmake approve` records an approval of its
model's fingerprint; a param change makes a new model, which voids the approval, and `plan` says so."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from mlmake.state.approvals import read_approvals
from mlmake.state.lock import read_lock
from tests.e2e.test_model_cards import with_card
from tests.helpers import build, copy_example

RunCli = Callable[..., Result]
ADA = "Ada Lovelace <ada@example.com>"
API = "    model: churn_xgb\n    kind: http\n"
WHEN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Git knows the approver as Ada (her global config), whatever this machine's config says."""
    config = tmp_path / "gitconfig"
    config.write_text("[user]\n\tname = Ada Lovelace\n\temail = ada@example.com\n", encoding="utf-8")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return config


def churn_needing_approval(tmp_path: Path) -> Path:
    root = with_card(copy_example("churn", tmp_path / "churn"), "churn")  # the card shows the approvals
    path = root / "mlproject.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(API) == 1
    path.write_text(text.replace(API, API + "    approval: {required: 1}\n"), encoding="utf-8")
    return root


def model_fingerprint(root: Path) -> str:
    return read_lock(root).nodes["models.churn_xgb"].fingerprint


def approval_lines(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    return lines[lines.index("Approvals:") + 1:] if "Approvals:" in lines else []


def test_an_unapproved_target_is_refused_then_approved_then_built_and_a_new_model_voids_it(
        run_cli: RunCli, tmp_path: Path, identity: Path) -> None:
    root = churn_needing_approval(tmp_path)
    result, ran = build(run_cli, root)
    assert result.exit_code == 1
    fp = model_fingerprint(root)
    assert result.stderr.splitlines()[0] == (
        f"FAILED deploy.churn_api: needs 1 approval(s) of models.churn_xgb as built (fingerprint {fp[:8]}), has 0: "
        "review it, run `mlmake approve deploy.churn_api` and commit approvals.yaml")
    assert result.stderr.endswith("error: 1 node(s) failed: deploy.churn_api\n")
    assert ran["models.churn_xgb"] == "built" and "deploy.churn_api" not in ran
    # unlike a failed gate, a refusal does not stop the build: the rest, the model's card among it, is built
    assert (ran["deploy.churn_scores"], ran["cards.churn_xgb"]) == ("built", "built")
    assert result.stdout.endswith("Build: 8 built, 0 up to date, 1 failed.\n")
    assert "deploy.churn_api" not in read_lock(root).nodes
    plan = run_cli(root, "plan")
    assert approval_lines(plan.stdout) == [f"  deploy.churn_api: 0 of 1 approval(s) of models.churn_xgb {fp[:8]}"]

    seen = json.loads(run_cli(root, "plan", "deploy.churn_api", "--format", "json").stdout)
    approved = run_cli(root, "approve", "churn_api")
    assert (approved.exit_code, approved.stderr) == (0, ""), approved.output
    metrics = read_lock(root).nodes["models.churn_xgb"].scores()
    shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    assert approved.stdout == (f"approved deploy.churn_api: models.churn_xgb {fp[:8]} ({shown}) by {ADA}\n"
                               "1 of 1 approval(s) given; commit approvals.yaml\n")
    [given] = read_approvals(root)["deploy.churn_api"]
    assert (given.by, given.model, given.fingerprint, given.plan, given.metrics) == (
        ADA, "models.churn_xgb", fp, seen["plan_hash"], metrics)
    assert WHEN.match(given.at)
    assert (root / "approvals.yaml").read_text(encoding="utf-8").startswith(
        "# Written by `mlmake approve`: who approved which model for which deploy target. Commit it;\n"
        "# an approval counts only while the model's fingerprint is the one approved.\n"
        "version: 1\napprovals:\n  deploy.churn_api:\n  - by: Ada Lovelace <ada@example.com>\n")

    result, ran = build(run_cli, root)
    assert (result.exit_code, ran) == (0, {"deploy.churn_api": "built", "cards.churn_xgb": "built"}), result.stderr
    card = (root / "build" / "cards" / "churn_xgb" / "card.md").read_text(encoding="utf-8")
    assert f"| `deploy.churn_api` | {ADA} | {given.at} | `{fp}` | valid |" in card.splitlines()
    plan = run_cli(root, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0
    assert approval_lines(plan.stdout) == [f"  deploy.churn_api: 1 of 1 approval(s) of models.churn_xgb {fp[:8]} "
                                           f"({ADA})"]

    # a param change: a new model, which nobody approved
    change = ("-P", "models.churn_xgb.params.max_depth=4")
    plan = run_cli(root, "plan", *change)
    new = json.loads(run_cli(root, "plan", "--format", "json", *change).stdout)
    new_fp = next(n["fingerprint"] for n in new["nodes"] if n["address"] == "models.churn_xgb")
    assert approval_lines(plan.stdout) == [
        f"  deploy.churn_api: 0 of 1 approval(s) of models.churn_xgb {new_fp[:8]} "
        "(to be rebuilt: params.max_depth 3 → 4)",
        f"    void: {ADA} approved {fp[:8]} at {given.at}; the model changed since"]
    assert new["approvals"] == [{
        "target": "deploy.churn_api", "model": "models.churn_xgb", "fingerprint": new_fp,
        "change": "to be rebuilt: params.max_depth 3 → 4", "required": 1, "approved": False, "given": [],
        "void": [{"by": ADA, "at": given.at, "fingerprint": fp, "plan_hash": given.plan}]}]

    result, ran = build(run_cli, root, *change)
    assert result.exit_code == 1
    assert ran["models.churn_xgb"] == "built"
    assert result.stderr.splitlines()[0] == (
        f"FAILED deploy.churn_api: needs 1 approval(s) of models.churn_xgb as built (fingerprint {new_fp[:8]}), "
        "has 0 (1 void: given for another fingerprint of the model): review it, run "
        "`mlmake approve deploy.churn_api` and commit approvals.yaml")


def test_approve_needs_the_model_built_as_the_file_says(run_cli: RunCli, tmp_path: Path, identity: Path) -> None:
    root = churn_needing_approval(tmp_path)
    result = run_cli(root, "approve", "churn_api")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == ("error: models.churn_xgb is not built as the file says (new node): an approval is of a "
                             "model as built, so run `mlmake build models.churn_xgb`, review it, then approve\n")
    assert not (root / "approvals.yaml").exists()


def test_approve_a_target_that_needs_none_or_without_a_git_identity(run_cli: RunCli, tmp_path: Path,
                                                                    identity: Path) -> None:
    root = churn_needing_approval(tmp_path)
    result = run_cli(root, "approve", "churn_scores")
    assert (result.exit_code, result.stderr) == (1, "error: deploy.churn_scores needs no approval: add "
                                                    "`approval: {required: 1}` to it to require one\n")
    identity.write_text("", encoding="utf-8")
    result = run_cli(root, "approve", "churn_api")
    assert (result.exit_code, result.stderr) == (1, (
        "error: an approval records who gave it, and git does not know who you are: run "
        "`git config user.name 'Your Name'` and `git config user.email you@example.com`\n"))


def test_a_malformed_approvals_file_is_a_clear_error(run_cli: RunCli, tmp_path: Path) -> None:
    root = churn_needing_approval(tmp_path)
    (root / "approvals.yaml").write_text("version: 1\napprovals:\n  deploy.churn_api: [{by: x}]\n", encoding="utf-8")
    result = run_cli(root, "plan")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == ("error: approvals.yaml is not a file `mlmake approve` wrote ('at'); restore it from git "
                             "(git checkout approvals.yaml)\n")
