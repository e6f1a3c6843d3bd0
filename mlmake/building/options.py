"""What a build is asked to do: `mlmake build`'s options."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    targets: tuple[str, ...] = ()
    jobs: int = 1
    force: bool = False
    keep_going: bool = False
    downstream: bool = False
    env: str | None = None
    overrides: tuple[str, ...] = ()
    pull: bool = False
    baseline: str | None = None  # git revision whose lock relative gates compare against
