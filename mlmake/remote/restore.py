"""Restoring outputs instead of rebuilding them: from the DVC cache (and, with
--pull, the remote) by a node's DVC pointer or its run-cache entry. A restored
output is hashed and must match what was recorded; a corrupted object is
removed from the cache and the node is rebuilt instead. Objects in folders on
this machine are copied without DVC (mlmake.remote.localrestore); DVC does the
rest."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlmake.core.columns import as_recorded
from mlmake.core.errors import MlmakeError
from mlmake.core.paths import writable_output
from mlmake.planning.plan import Decision
from mlmake.remote.dvcstore import Store
from mlmake.remote.localrestore import LocalRestore, Refused
from mlmake.state import runcache
from mlmake.state.hashing import Hasher, md5_file
from mlmake.state.lock import Entry
from mlmake.state.remotecache import local_folder
from mlmake.state.runcache import Hit, has_pointer


class Restorer:
    """Saves what was built into the cache, and brings it back when asked."""

    def __init__(self, root: Path, store: Store, hasher: Hasher, *, pull: bool,
                 warn: Callable[[str], None], then: str = "building it") -> None:
        self.root, self.store, self.hasher, self.pull, self.warn = root, store, hasher, pull, warn
        self.then = then  # what happens to a node that cannot be restored, for the warnings
        location = store.location
        self.local = LocalRestore(root, local_folder(root, location) if location.is_local else None, warn,
                                  repair=location.automatic)

    def save(self, step: Decision, outputs: dict[str, dict[str, Any]], metrics: dict[str, Any]) -> None:
        """Record a built node's outputs in the DVC cache, its pointer and the run cache
        (outputs in the order the node declares them: a renamed node restores them by role)."""
        md5s = self.store.add(step.address, outputs)
        recorded = {p: {**o, **md5s.get(p, {})} for p, o in outputs.items()}
        hit = Hit(step.fingerprint, step.address, recorded, metrics, tuple(outputs))
        runcache.put(self.root, hit)
        self.store.share(hit)  # on the machine's default remote: at once, for the other clones

    def restore(self, step: Decision, entry: Entry | None) -> Entry | None:
        """The node's outputs put back as its decision says (the run-cache entry it found,
        mapped onto the node's own paths, or what the lock records, by the node's DVC pointer);
        None when it must be built."""
        if step.cached is not None:
            hit = step.cached
            self.store.write_pointer(step.address, hit.outputs)
            outputs = {p: as_recorded(o) for p, o in hit.outputs.items()}
            # the machine's default remote is on this machine: fetched from without being asked
            remote = self.pull or self.store.location.automatic
            if not self._bring_back(step.address, outputs, fetch=remote):
                return None
            return Entry(step.fingerprint, step.kind, step.components, outputs, hit.metrics, dict(step.gates),
                         dict(step.code_bytes))
        if entry is None or entry.fingerprint != step.fingerprint or not has_pointer(self.root, step.address) \
                or any(r.code == "outputs_moved" for r in step.reasons):
            return None
        # what the lock records is materialized from the cache, or the remote when not cached
        if not self._bring_back(step.address, entry.outputs, fetch=True):
            return None
        self.remember(step.address, entry)
        return entry

    def restore_entry(self, address: str, entry: Entry) -> bool:
        """Bring a locked node's outputs back by its pointer (fetching them with pull)."""
        if not self._bring_back(address, entry.outputs, fetch=True):
            return False
        self.remember(address, entry)
        return True

    def remember(self, address: str, entry: Entry) -> None:
        """A run-cache entry for what the lock records, so switching back later restores it."""
        remembered(self.root, self.store, address, entry)

    def _checkout(self, address: str, fetch: bool) -> bool:
        """Outputs from the local cache, fetching missing objects from the remote when allowed."""
        try:
            self.store.checkout(address, quiet=True)
            return True
        except MlmakeError:
            if not fetch:
                return False
        try:
            self.store.fetch([address], quiet=True)
            self.store.checkout(address, quiet=True)
            return True
        except MlmakeError as exc:
            self.warn(f"{address}: not in the cache or on the remote ({_first_line(exc)}); {self.then}")
            return False

    def remote_hit(self, fingerprint: str) -> Hit | None:
        """The remote's run-cache entry of a fingerprint (kept locally), or None."""
        data = self.store.fetch_run(fingerprint)
        if not data:
            return None
        try:
            hit = runcache.from_dict(fingerprint, data)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        runcache.put(self.root, hit)
        return hit

    def _bring_back(self, address: str, outputs: dict[str, dict[str, Any]], *, fetch: bool) -> bool:
        """Check out, verify against the recorded hashes; a corrupted cache gets one re-fetch."""
        for out in outputs:  # a symlink made after validate must not lead a restore outside
            problem = writable_output(self.root, out)
            if problem:
                self.warn(f"{address}: {problem}; {self.then}")
                return False
        try:  # without DVC when its objects are in folders here, checked while copied
            if self.local.restore(address, outputs, fetch=fetch):
                return True
        except Refused as exc:
            self.warn(f"{address}: {exc}; {self.then}")
            return False
        for attempt in range(2 if fetch else 1):
            if not self._checkout(address, fetch):
                return False
            bad = [p for p, o in outputs.items() if self.hasher.digest(p).hash != o.get("hash")]
            if not bad:
                return True
            for path in bad:
                self._purge(path)
            again = "fetching it again" if attempt == 0 and fetch else self.then
            self.warn(f"{address}: restored {', '.join(bad)} does not match its recorded hash; {again}")
        return False

    def _purge(self, path: str) -> None:
        """Remove a bad restored output and every corrupted object in the local cache."""
        full = self.root / path
        if full.is_dir():
            shutil.rmtree(full, ignore_errors=True)
        else:
            full.unlink(missing_ok=True)
        drop_corrupt_objects(Path(self.store.repo.cache.local.path), self.warn)


class StoreThread:
    """A build's DVC work on one thread of its own. Copying and md5-hashing a finished node's
    outputs into the DVC cache (and opening DVC: a quarter of a second of imports) overlap the
    nodes that run next instead of delaying them; the lock entry is written before, so a build
    stopped with saves pending loses only the cached copy, never a recorded node. DVC's
    repository is touched by this thread alone, in the order the calls came."""

    def __init__(self, restorer: Restorer) -> None:
        self.restorer = restorer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlmake-dvc")
        self._saves: list[tuple[str, Future[None]]] = []
        self._opened = False

    def open(self) -> None:
        """Open DVC now, in the background (once: when the first node is built, so that a build
        that only restores never opens it); a failure shows at the first save that needs it."""
        if not self._opened:
            self._opened = True
            self._pool.submit(_open_quietly, self.restorer.store)

    def save(self, step: Decision, outputs: dict[str, dict[str, Any]], metrics: dict[str, Any]) -> None:
        self._saves.append((step.address, self._pool.submit(self.restorer.save, step, outputs, metrics)))

    def restore(self, step: Decision, entry: Entry | None) -> Entry | None:
        """Restorer.restore, after every save asked for before it."""
        return self._pool.submit(self.restorer.restore, step, entry).result()

    def prefetch(self, addresses: list[str]) -> None:
        """Fetch the objects of nodes to be restored by their pointers in one DVC call, in the
        background (a fresh clone: one fetch, not one per node); a node's own restore fetches
        whatever this could not. Not for a remote in a folder here: those are copied without DVC."""
        if not self.restorer.local.serves_remote():
            self._pool.submit(_fetch_quietly, self.restorer.store, addresses)

    def remote_hit(self, fingerprint: str) -> Hit | None:
        """Restorer.remote_hit, after every save asked for before it."""
        return self._pool.submit(self.restorer.remote_hit, fingerprint).result()

    def pull_data(self, paths: list[str]) -> None:
        """DVC-tracked raw data fetched into the workspace (build --pull), before anything runs."""
        self._pool.submit(self.restorer.store.pull_data, paths).result()

    def failures(self, *, wait: bool = False) -> list[str]:
        """`address: why` for each finished save that could not store its node (waiting for all
        of them with wait); they are reported once. A bug in a save is raised, not reported."""
        failed, pending = [], []
        for address, future in self._saves:
            if not (wait or future.done()):
                pending.append((address, future))
                continue
            exc = future.exception()
            if isinstance(exc, MlmakeError):
                failed.append(f"{address}: built, but not stored in the DVC cache: {exc}")
            elif exc is not None:
                raise exc
        self._saves = pending
        return failed

    def close(self) -> list[str]:
        """Wait for the saves, close DVC; the failures not reported yet."""
        try:
            return self.failures(wait=True)
        finally:
            self._pool.submit(self.restorer.store.close).result()
            self._pool.shutdown()


def _fetch_quietly(store: Store, addresses: list[str]) -> None:
    with contextlib.suppress(MlmakeError):  # each node's restore tries again and warns
        store.fetch(addresses, quiet=True)


def _open_quietly(store: Store) -> None:
    with contextlib.suppress(MlmakeError):  # the save that needs it tries again and reports why
        store.ensure()


def remembered(root: Path, store: Store, address: str, entry: Entry) -> Hit:
    """The run-cache entry of a lock entry: the one recorded, or one made from its DVC pointer."""
    known = runcache.get(root, entry.fingerprint)
    if known is not None and runcache.is_complete(known):
        return known
    md5s = store.pointer_md5s(address)
    hit = Hit(entry.fingerprint, address, {p: {**o, **md5s.get(p, {})} for p, o in entry.outputs.items()},
              entry.metrics)
    runcache.put(root, hit)
    return hit


def drop_corrupt_objects(cache: Path, warn: Callable[[str], None]) -> list[Path]:
    """Check every object of a DVC cache against its name (its md5); remove the bad ones."""
    dropped = []
    for obj in sorted(cache.rglob("*")):
        if not obj.is_file() or len(obj.parent.name) != 2:
            continue
        oid = (obj.parent.name + obj.name).removesuffix(".dir")
        if md5_file(obj) != oid:
            warn(f"cache object {obj} is corrupted (its bytes do not match its md5): removed")
            os.chmod(obj, 0o644)
            obj.unlink()
            dropped.append(obj)
    return dropped


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
