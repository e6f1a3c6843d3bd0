"""The time now, for what depends on it (a model's age, a report's time); MLMAKE_NOW
(an ISO time, e.g. 2026-12-08T00:00:00Z) sets it, so a test or a rehearsal can move the clock."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

ENV = "MLMAKE_NOW"


def now() -> float:
    """Seconds since the epoch."""
    fixed = os.environ.get(ENV)
    if fixed:
        try:
            return datetime.fromisoformat(fixed.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return time.time()


def now_text() -> str:
    return datetime.fromtimestamp(now(), UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
