"""`mlmake push` and `mlmake pull`: artifacts and run-cache entries to and from the remote."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from mlmake.core.errors import MlmakeError
from mlmake.core.graph import Graph
from mlmake.remote.dvcstore import Store
from mlmake.remote.restore import Restorer, remembered
from mlmake.state.hashing import Hasher
from mlmake.state.lock import Entry, read_lock
from mlmake.state.runcache import has_pointer

Warn = Callable[[str], None]


def push(root: Path, graph: Graph, targets: tuple[str, ...], store: Store, warn: Warn) -> tuple[int, int]:
    """Upload what the lock records for the targets; (files uploaded, nodes)."""
    lock = read_lock(root)
    addresses = [a for a in graph.select(targets) if a in lock.nodes]
    hasher = Hasher(root)
    ready = [a for a in addresses if _has_pointer_or_add(root, a, lock.nodes[a], store, hasher, warn)]
    files = store.push(ready, tracked_data(root, graph, addresses))
    store.push_runs(remembered(root, store, a, lock.nodes[a]) for a in ready)
    hasher.save()
    return files, len(ready)


def _has_pointer_or_add(root: Path, address: str, entry: Entry, store: Store, hasher: Hasher, warn: Warn) -> bool:
    """A node built before DVC was set up gets its pointer now, if its outputs are intact."""
    if has_pointer(root, address):
        return True
    if all(hasher.digest(p).hash == o.get("hash") for p, o in entry.outputs.items()):
        store.add(address, list(entry.outputs))
        return True
    warn(f"{address}: its outputs are not in this workspace; build or pull it before pushing")
    return False


def pull(root: Path, graph: Graph, targets: tuple[str, ...], store: Store, warn: Warn) -> tuple[list[str], list[str]]:
    """Bring back what the lock records for the targets; (restored, not restored)."""
    lock = read_lock(root)
    addresses = [a for a in graph.select(targets) if a in lock.nodes]
    hasher = Hasher(root)
    store.check_reachable()  # a remote that cannot be used is an error; a missing object is not
    store.pull_data(tracked_data(root, graph, graph.select(targets)))
    restorer = Restorer(root, store, hasher, pull=True, warn=warn, then="not restored")
    ready = [a for a in addresses if has_pointer(root, a)]
    _fetch_and_checkout(store, ready)
    restored: list[str] = []
    missing: list[str] = []
    for address in addresses:
        entry = lock.nodes[address]
        if address in ready and _intact(hasher, entry):  # checked out above, and what the lock records
            restorer.remember(address, entry)
            ok = True
        else:  # one node at a time: fetched again, a corrupted object removed, or named
            ok = address in ready and restorer.restore_entry(address, entry)
        (restored if ok else missing).append(address)
    hasher.save()
    return restored, missing


def _fetch_and_checkout(store: Store, addresses: list[str]) -> None:
    """Every node's objects in one DVC fetch and one checkout, as `dvc pull` does; what fails
    here is done again node by node, where the failure is named."""
    with contextlib.suppress(MlmakeError):
        store.fetch(addresses, quiet=True)
    with contextlib.suppress(MlmakeError):
        store.checkout_all(addresses)


def _intact(hasher: Hasher, entry: Entry) -> bool:
    return all(hasher.digest(p).hash == o.get("hash") for p, o in entry.outputs.items())


def tracked_data(root: Path, graph: Graph, addresses: list[str]) -> list[str]:
    """Raw inputs of these nodes that DVC tracks (PATH.dvc beside them)."""
    return sorted({p for a in addresses for p in graph.files[a] if (root / f"{p}.dvc").is_file()})
