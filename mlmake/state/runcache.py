"""The run cache: fingerprint → the outputs (and metrics) a node produced.

Entries are small JSON files in .mlmake/runcache/, pushed to and pulled from the
remote beside the artifacts; the artifacts themselves live in the DVC cache. A
node whose fingerprint has an entry is restored instead of rebuilt."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlmake.core.workdir import RUNCACHE, VERSIONS, write_atomic

DIR = RUNCACHE
VERSION = VERSIONS[RUNCACHE]


@dataclass(frozen=True)
class Hit:
    """What a node with this fingerprint produced before."""

    fingerprint: str
    address: str
    outputs: dict[str, dict[str, Any]]  # path → {hash, size, md5}
    metrics: dict[str, Any] = field(default_factory=dict)
    order: tuple[str, ...] = ()  # the outputs in the order the node declared them (their roles)

    def to_dict(self) -> dict[str, Any]:
        order = {"order": list(self.order)} if self.order else {}
        return {"version": VERSION, "fingerprint": self.fingerprint, "address": self.address,
                "outputs": self.outputs, "metrics": self.metrics, **order}


def entry_path(root: Path, fingerprint: str) -> Path:
    return root / DIR / fingerprint[:2] / f"{fingerprint}.json"


def get(root: Path, fingerprint: str) -> Hit | None:
    """The local entry for a fingerprint, or None (an unreadable entry counts as none)."""
    return read_entry(entry_path(root, fingerprint), fingerprint)


def read_entry(path: Path, fingerprint: str) -> Hit | None:
    """The entry stored at path (here or on a local remote), or None when absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != VERSION or data.get("fingerprint") != fingerprint:
            return None
        return from_dict(fingerprint, data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def from_dict(fingerprint: str, data: dict[str, Any]) -> Hit:
    """An entry as stored (here or on the remote); KeyError/TypeError when malformed."""
    return Hit(fingerprint, str(data["address"]), dict(data["outputs"]), dict(data.get("metrics") or {}),
               tuple(str(p) for p in data.get("order") or ()))


def onto(hit: Hit, declared: tuple[str, ...]) -> Hit | None:
    """The entry with its outputs renamed to a node's declared outputs, role by role (a kind
    declares its outputs in order), so a renamed or copied node restores into its own paths.
    None when the outputs cannot be matched up."""
    order = list(hit.order) or (sorted(hit.outputs) if len(hit.outputs) == 1 else [])
    if not order and set(hit.outputs) == set(declared):
        order = list(declared)  # an entry from before `order` was recorded: the same paths
    if len(order) != len(declared) or set(order) != set(hit.outputs):
        return None
    outputs = {new: hit.outputs[old] for old, new in zip(order, declared, strict=True)}
    return Hit(hit.fingerprint, hit.address, outputs, hit.metrics, declared)


def put(root: Path, hit: Hit) -> None:
    """Record an entry atomically."""
    write_atomic(entry_path(root, hit.fingerprint), json.dumps(hit.to_dict(), sort_keys=True))


def is_complete(hit: Hit) -> bool:
    """Whether every output has the DVC hash needed to restore it."""
    return bool(hit.outputs) and all(o.get("md5") for o in hit.outputs.values())


POINTERS = ".mlmake-artifacts"  # one DVC pointer per built node, committed with the lock


def pointer_path(root: Path, address: str) -> Path:
    return root / POINTERS / f"{address}.dvc"


def has_pointer(root: Path, address: str) -> bool:
    return pointer_path(root, address).is_file()


class LocalCache:
    """The run cache and pointers on this machine, for planning (no network, no dvc)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def hit(self, fingerprint: str) -> Hit | None:
        return get(self.root, fingerprint)

    def restorable(self, address: str) -> bool:
        return has_pointer(self.root, address)
