"""The model item: a feature set, a target and a task, xgboost params, metrics and gates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlmake.core.errors import Span
from mlmake.core.spec import INTERNAL, NOT_FINGERPRINTED, deps_of


@dataclass(frozen=True, slots=True)
class Split:
    test_size: float = 0.2
    seed: int = 0
    stratify: bool = False
    by: str | None = None  # "random" or "hash"; None: unset, so no existing fingerprint moves


@dataclass(frozen=True, slots=True)
class Model:
    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    features: str
    target: str
    task: str
    drop: tuple[str, ...] = ()
    split: Split = Split()
    params: dict[str, Any] = field(default_factory=dict)
    metrics: tuple[str, ...] = ()
    gates: dict[str, str] = field(default_factory=dict)
    slices: tuple[str, ...] = ()
    retrain: tuple[Any, ...] = field(default=(), metadata=NOT_FINGERPRINTED)  # triggers: judged, not an input
    description: str = field(default="", metadata=NOT_FINGERPRINTED)
    deps: tuple[str, ...] = field(default=(), metadata=NOT_FINGERPRINTED)  # files no analysis sees; hashed as code
    engine: str | None = None  # "local" (None: unset, so no existing fingerprint moves) or "dask"


def parse(name: str, span: Span | None, d: Mapping[str, Any]) -> Model:
    split = dict(d.get("split", {}))
    if d.get("engine") == "dask" and split.get("by") is None:
        # spelled out, so the split engine: dask uses is in its fingerprint: a dask model built
        # before partition-wise training (a random split) is stale, not called fresh
        split["by"] = "random" if split.get("stratify") else "hash"
    return Model(
        name, span, d["features"], d["target"], d["task"], tuple(d.get("drop", ())),
        Split(**split), dict(d.get("params", {})), tuple(d.get("metrics", ())),
        dict(d.get("gates", {})), tuple(d.get("slices", ())), tuple((d.get("retrain") or {}).get("when", ())),
        d.get("description", ""), deps_of(d), d.get("engine"),
    )
