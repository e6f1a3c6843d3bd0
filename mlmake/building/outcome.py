"""What became of each node of a build: one `Finished` per node the commit step settled,
gathered into the build's `Outcome`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["built", "restored", "fresh", "failed"]


@dataclass(frozen=True)
class Finished:
    """How one node ended, as the reporter is told it."""

    status: Status
    message: str = ""  # failed: why; fresh: why nothing was done
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)
    log_tail: list[str] = field(default_factory=list)  # failed while running: the end of its log
    stops: bool = True  # failed: the build stops (unless --keep-going); not for a target awaiting approval


@dataclass
class Outcome:
    """The nodes of one build by what became of them, filled in as it goes."""

    built: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, address: str, status: Status) -> None:
        lists = {"built": self.built, "restored": self.restored, "fresh": self.fresh, "failed": self.failed}
        lists[status].append(address)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        parts = [f"{len(self.built)} built"]
        if self.restored:
            parts.append(f"{len(self.restored)} restored from cache")
        parts.append(f"{len(self.fresh)} up to date")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.skipped:
            parts.append(f"{len(self.skipped)} not run")
        return "Build: " + ", ".join(parts) + "."
