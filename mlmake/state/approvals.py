"""approvals.yaml: who approved which model for which deploy target. Committed beside
mlproject.yaml, versioned, in a fixed order (targets sorted, each target's approvals in the order
they were given), read safely and written atomically. An approval names the model and the
fingerprint it approved, its metrics and the hash of the plan the approver saw; one for an older
fingerprint stays in the file as history and counts for nothing (planning.approval decides)."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlmake.core.errors import MlmakeError
from mlmake.core.plain import Json
from mlmake.core.workdir import write_atomic

APPROVALS_FILE = "approvals.yaml"
APPROVALS_VERSION = 1
_HEADER = ("# Written by `mlmake approve`: who approved which model for which deploy target. Commit it;\n"
           "# an approval counts only while the model's fingerprint is the one approved.\n")


@dataclass(frozen=True, slots=True)
class Approval:
    """One person's approval of a deploy target's model, as built."""

    by: str  # "Name <email>", from git config
    at: str  # UTC, ISO 8601 to the second
    model: str  # the model's address
    fingerprint: str  # the model's fingerprint in the lock when approved
    plan: str  # the hash of the target's plan when approved (planning.approval.plan_hash)
    metrics: dict[str, Json] = field(default_factory=dict)  # the model's held-out metrics then

    def to_dict(self) -> dict[str, Json]:
        return {"by": self.by, "at": self.at, "model": self.model, "fingerprint": self.fingerprint,
                "plan": self.plan, "metrics": dict(self.metrics)}


Approvals = dict[str, tuple[Approval, ...]]  # target address → its approvals, oldest first


def read_approvals(root: Path) -> Approvals:
    """The project's approvals; none when the file is absent. A malformed file is an error."""
    path = root / APPROVALS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise MlmakeError(f"cannot read {APPROVALS_FILE}: {exc}") from None
    try:
        return _parse(_load(text))
    except (KeyError, TypeError, ValueError) as exc:
        raise MlmakeError(f"{APPROVALS_FILE} is not a file `mlmake approve` wrote ({exc}); restore it from git "
                          f"(git checkout {APPROVALS_FILE})") from None


def _load(text: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        return YAML(typ="safe", pure=True).load(text)  # plain data only: no tag builds an object
    except YAMLError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None


def _parse(data: Any) -> Approvals:
    if data is None:
        return {}
    if not isinstance(data, Mapping) or data.get("version") != APPROVALS_VERSION:
        raise ValueError(f"expected version: {APPROVALS_VERSION}")
    out: Approvals = {}
    for target, given in (data.get("approvals") or {}).items():
        out[str(target)] = tuple(_approval(a) for a in given)
    return out


def _approval(data: Mapping[str, Any]) -> Approval:
    metrics = data.get("metrics") or {}
    if not isinstance(metrics, Mapping):
        raise ValueError("metrics must be a mapping")
    return Approval(str(data["by"]), str(data["at"]), str(data["model"]), str(data["fingerprint"]),
                    str(data["plan"]), dict(metrics))


def with_approval(approvals: Approvals, target: str, approval: Approval) -> Approvals:
    """The approvals with one more: a second approval by the same person of the same fingerprint
    replaces their first (an approval is a person's, not a count of commands)."""
    kept = tuple(a for a in approvals.get(target, ()) if (a.by, a.fingerprint) != (approval.by, approval.fingerprint))
    return {**approvals, target: (*kept, approval)}


def write_approvals(root: Path, approvals: Approvals) -> None:
    """Write the file atomically: targets sorted, approvals in the order given."""
    from ruamel.yaml import YAML

    body = {"version": APPROVALS_VERSION,
            "approvals": {t: [a.to_dict() for a in approvals[t]] for t in sorted(approvals)}}
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]  # keep the order above
    stream = io.StringIO()
    yaml.dump(body, stream)
    write_atomic(root / APPROVALS_FILE, _HEADER + stream.getvalue())


def git_identity(root: Path) -> str:
    """`Name <email>` from git config (the identity the approver's commits carry)."""
    name, email = _git_config(root, "user.name"), _git_config(root, "user.email")
    if not name or not email:
        raise MlmakeError("an approval records who gave it, and git does not know who you are: run "
                          "`git config user.name 'Your Name'` and `git config user.email you@example.com`")
    return f"{name} <{email}>"


def _git_config(root: Path, key: str) -> str:
    try:
        done = subprocess.run(["git", "config", key], cwd=root, capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
