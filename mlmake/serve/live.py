"""The bundle a service answers with, and the watcher that swaps in a rebuilt one.

`mlmake build` replaces build/deploy/NAME as a whole (a rename), so the manifest's
inode changes on every rebuild. The watcher polls its stat; on a change it loads the
new bundle completely in its own thread (files read once, each checked against the
manifest's hashes, the model warmed up) and only then replaces one reference. A
request takes that reference once, so it is answered entirely by the old bundle or
entirely by the new one, and none fails during the switch."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import MlmakeError, NodeError
from mlmake.ml.bundle import BUNDLE_FORMAT, MANIFEST_FILE, STORE_FILE
from mlmake.ml.design import inputs_from_signature
from mlmake.ml.rows import RowEncoder
from mlmake.ml.scoring import FORMAT_KEY, MODEL_FILE, SIGNATURE_FILE, Scorer, load_booster, load_predictor, predict
from mlmake.serve.raw import RawRows, load_raw
from mlmake.serve.store import OnlineStore, load_store

if TYPE_CHECKING:
    from collections.abc import Callable

Stamp = tuple[int, int, int]


class BundleError(MlmakeError):
    """A bundle that is missing, incomplete or of another format."""


@dataclass(frozen=True)
class Bundle:
    """Everything one model version answers with."""

    folder: str
    manifest: dict[str, Any]
    scorer: Scorer
    encoder: RowEncoder
    store: OnlineStore | None
    stamp: Stamp
    loaded_at: float
    raw: RawRows | None = None  # computes the features of raw rows, when the feature set runs per request

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["model"]["fingerprint"])

    @property
    def model(self) -> str:
        return str(self.manifest["model"]["name"])


def stamp_of(folder: str) -> Stamp | None:
    """What changes when the bundle is rewritten: the manifest's inode, mtime and size."""
    try:
        st = os.stat(os.path.join(folder, MANIFEST_FILE))
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def load_bundle(folder: str, threads: int = 1) -> Bundle:
    """Load and check a bundle; BundleError when it is not complete and consistent.

    `threads` is the booster's: 1 by default, since the service answers one request at a
    time and OpenMP workers that spin between small requests cost far more than they
    save (p99 went from 8 ms to 80 ms on a busy 2-core machine)."""
    import numpy as np
    from blake3 import blake3

    stamp = stamp_of(folder)
    if stamp is None:
        raise BundleError(f"{folder} holds no {MANIFEST_FILE}: build the deploy target first")
    manifest = _json(_read(folder, MANIFEST_FILE))
    if manifest.get("format") != BUNDLE_FORMAT or manifest.get("kind") not in ("http", "docker"):
        raise BundleError(f"{folder} is not a serving bundle this mlmake reads (format {manifest.get('format')!r}, "
                          f"kind {manifest.get('kind')!r}); rebuild it")
    blobs = {name: _read(folder, name) for name in manifest.get("files", {})}
    changed = [n for n, data in blobs.items() if blake3(data).hexdigest(length=16) != manifest["files"][n]]
    if changed:
        raise BundleError(f"{folder}: {', '.join(changed)} changed after the manifest was written (mid-rebuild?)")
    scorer = _scorer(folder, blobs, threads)
    if FORMAT_KEY in scorer.signature and stamp_of(folder) != stamp:  # a plugin's model is read from the folder
        raise BundleError(f"{folder} was rewritten while it loaded (mid-rebuild?)")
    store = _store(blobs, manifest, scorer)
    raw = load_raw(blobs, manifest, [i.name for i in scorer.inputs])
    predict(scorer, np.full((1, len(scorer.inputs)), np.nan, dtype=np.float32))  # warm up before taking traffic
    return Bundle(folder, manifest, scorer, RowEncoder(scorer.inputs, tuple(scorer.key)), store, stamp, time.time(),
                  raw)


def _read(folder: str, name: str) -> bytes:
    try:
        with open(os.path.join(folder, name), "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise BundleError(f"cannot read {os.path.join(folder, name)}: {exc.strerror}") from None


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise BundleError(f"a bundle file is not JSON: {exc}") from None
    return value if isinstance(value, dict) else {}


def _scorer(folder: str, blobs: dict[str, bytes], threads: int) -> Scorer:
    """The built-in booster from the bytes checked against the manifest; a plugin's model
    by its kind's load_predictor (load_bundle then checks the folder did not change meanwhile)."""
    if SIGNATURE_FILE not in blobs:
        raise BundleError(f"the bundle lacks {SIGNATURE_FILE}")
    signature = _json(blobs[SIGNATURE_FILE])
    try:
        if FORMAT_KEY in signature:
            predictor = load_predictor(folder, signature, threads)
        elif MODEL_FILE not in blobs:
            raise BundleError(f"the bundle lacks {MODEL_FILE}")
        else:
            predictor = load_booster(blobs[MODEL_FILE], threads)
    except NodeError as exc:
        raise BundleError(str(exc)) from None
    return Scorer(predictor, signature, inputs_from_signature(signature))


def _store(blobs: dict[str, bytes], manifest: dict[str, Any], scorer: Scorer) -> OnlineStore | None:
    import polars as pl

    store = manifest.get("store")
    if not store or STORE_FILE not in blobs:
        return None
    frame = pl.read_parquet(io.BytesIO(blobs[STORE_FILE]))
    return load_store(frame, [str(k) for k in store["key"]], scorer.inputs)


class Live:
    """The current bundle of a folder, swapped for a rebuilt one while serving."""

    def __init__(self, folder: str, poll_s: float = 1.0, threads: int = 1,
                 say: Callable[[str], None] | None = None) -> None:
        self.folder = folder
        self.poll_s = poll_s
        self.threads = threads
        self.say = say or _stderr
        self.current = load_bundle(folder, threads)
        self._failed: Stamp | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None and self.poll_s > 0:
            self._thread = threading.Thread(target=self._watch, name="mlmake-bundle-watcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.check()

    def check(self) -> bool:
        """Load the bundle again if its manifest changed; True when a new one was swapped in."""
        stamp = stamp_of(self.folder)
        if stamp is None or stamp == self.current.stamp or stamp == self._failed:
            return False  # mid-rename, unchanged, or already found broken
        try:
            fresh = load_bundle(self.folder, self.threads)
        except Exception as exc:  # noqa: BLE001 - keep serving the old model whatever went wrong
            self._failed = stamp
            self.say(f"mlmake serve: kept model {self.current.fingerprint}; the rebuilt bundle did not load: {exc}")
            return False
        old, self.current = self.current, fresh  # one reference: requests see the old or the new bundle
        self.say(f"mlmake serve: switched from model {old.fingerprint} to {fresh.fingerprint}")
        return True


def _stderr(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
