"""What a registered version records about its model, kept in the body of its GTO tag's
message after GTO's own first line:

    Registering artifact churn_xgb version v0.0.2

    mlmake record 1
    {"address": "models.churn_xgb", "commit": "…", "data": {…}, "fingerprint": "…", …}

GTO keeps a tag's message as text (`gto history` shows it) and reads nothing in it, so the
record travels with the tag: `git fetch --tags` brings it to any clone, and nothing else has to
be committed. The same values are in mlproject.lock at the tag's commit, which mlmake refuses
to register unless the build is committed there; the record is their copy, readable without a
checkout."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from mlmake.core.plain import Json

MARKER = "mlmake record 1"


@dataclass(frozen=True, slots=True)
class Record:
    """A model version as it was registered."""

    model: str
    address: str
    fingerprint: str
    kind: str
    commit: str
    outputs: dict[str, dict[str, Json]] = field(default_factory=dict)  # path → {hash, size, md5}
    metrics: dict[str, Json] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)  # the data files upstream of it → their hashes
    project: str = ""  # the project's folder in the repository

    def to_dict(self) -> dict[str, Json]:
        return {"model": self.model, "address": self.address, "fingerprint": self.fingerprint,
                "kind": self.kind, "commit": self.commit, "outputs": {p: dict(o) for p, o in self.outputs.items()},
                "metrics": dict(self.metrics), "data": dict(self.data), "project": self.project}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        """KeyError/TypeError/ValueError when malformed."""
        return cls(str(d["model"]), str(d["address"]), str(d["fingerprint"]), str(d.get("kind", "")),
                   str(d["commit"]), {str(p): dict(o) for p, o in dict(d.get("outputs") or {}).items()},
                   dict(d.get("metrics") or {}), {str(k): str(v) for k, v in dict(d.get("data") or {}).items()},
                   str(d.get("project", "")))


def to_message(first_line: str, record: Record) -> str:
    """GTO's message with the record below it."""
    body = json.dumps(record.to_dict(), sort_keys=True, ensure_ascii=False)
    return f"{first_line}\n\n{MARKER}\n{body}\n"


def from_message(message: str) -> Record | None:
    """The record in a tag's message; None when there is none (a version GTO or a person
    registered) or it cannot be read."""
    lines = message.splitlines()
    try:
        at = lines.index(MARKER)
        return Record.from_dict(json.loads(lines[at + 1]))
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        return None
