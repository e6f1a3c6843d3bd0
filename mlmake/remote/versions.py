"""The outputs of a registered version, brought back for the deploy targets that follow it
(`model: churn_xgb@production`) into .mlmake/registry/FINGERPRINT/…, never into the workspace's
own model folder: the model built here may be another version.

From the workspace when the model built here is that version (its outputs have the recorded
hashes), else from the project's DVC cache and a remote in a folder on this machine (the
machine's default remote included) by the md5s its tag records, checked against the recorded
hashes on the way (mlmake.remote.localrestore). A version whose objects are in neither place is
an error that says how to get them."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlmake.core.errors import MlmakeError
from mlmake.core.workdir import move_into_place, staging_root
from mlmake.registry import FOLDER
from mlmake.remote.dvcstore import Store
from mlmake.remote.localrestore import LocalRestore, Refused
from mlmake.state.hashing import Hasher
from mlmake.state.remotecache import local_folder
from mlmake.state.runcache import POINTERS


def bring_back(root: Path, config: Mapping[str, Any], store: Store, warn: Callable[[str], None]) -> bool:
    """One version's outputs into its folder (False: they were there already); MlmakeError
    naming the version when they cannot be found."""
    if (root / str(config["folder"])).is_dir():
        return False
    location = store.location
    fingerprint = str(config["fingerprint"])
    outputs: dict[str, dict[str, Any]] = dict(config["outputs"])
    base = f"{FOLDER}/{fingerprint}"
    if not re.fullmatch(r"[0-9a-f]{8,128}", fingerprint) or not all(map(_is_plain, outputs)):
        raise MlmakeError(f"version {config['version']}: its tag records paths mlmake does not write "
                          f"({', '.join(outputs)}); it was not registered by mlmake")
    if _from_workspace(root, base, outputs):
        return True
    local = LocalRestore(root, local_folder(root, location) if location.is_local else None, warn,
                         repair=location.automatic)
    pointed = {f"{base}/{p}": str(o.get("md5") or "") for p, o in outputs.items()}
    recorded = {f"{base}/{p}": str(o.get("hash") or "") for p, o in outputs.items()}
    try:
        if all(pointed.values()) and local.usable() and local.restore_outputs(pointed, recorded, fetch=True):
            return True
    except Refused as exc:
        raise MlmakeError(f"version {config['version']} of the model (fingerprint {fingerprint[:8]}): {exc}") from None
    if all(pointed.values()) and _with_dvc(root, store, pointed, recorded, warn):
        return True
    raise MlmakeError(f"version {config['version']} of the model (fingerprint {fingerprint[:8]}) is neither built "
                      "here nor in the DVC cache or a remote on this machine: check out its commit and run "
                      "`mlmake pull`, or build it there and `mlmake push`")


def _from_workspace(root: Path, base: str, outputs: Mapping[str, Mapping[str, Any]]) -> bool:
    """Copy the outputs from the workspace when they are the version's (by their hashes)."""
    hasher = Hasher(root)
    if not all(hasher.digest(p).hash == o.get("hash") for p, o in outputs.items()):
        return False
    stage = staging_root(root) / f"version-{uuid.uuid4().hex[:12]}"
    try:
        for i, path in enumerate(outputs):
            source, place = root / path, stage / str(i)
            if source.is_dir():
                shutil.copytree(source, place)
            else:
                place.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, place)
        for i, path in enumerate(outputs):
            (root / base / path).parent.mkdir(parents=True, exist_ok=True)
            move_into_place(stage / str(i), root / base / path)
        return True
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _with_dvc(root: Path, store: Store, pointed: dict[str, str], recorded: dict[str, str],
              warn: Callable[[str], None]) -> bool:
    """DVC's fetch and checkout (any remote) by a pointer written for the moment beside the
    nodes' (DVC refuses one in a git-ignored folder), then each output checked by its hash."""
    pointer = root / POINTERS / f"registry-version-{uuid.uuid4().hex[:12]}.dvc"
    lines = ["# Written by mlmake for a moment: a registered version's outputs.\nouts:\n"]
    for out, md5 in sorted(pointed.items()):
        rel = Path(os.path.relpath(root / out, root / POINTERS)).as_posix()
        lines.append(f"- md5: {md5}\n  hash: md5\n  path: {rel}\n")
    try:
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.write_text("".join(lines), encoding="utf-8")
        store.checkout_pointer(pointer)
    except MlmakeError as exc:
        warn(str(exc).splitlines()[0])
        return False
    finally:
        pointer.unlink(missing_ok=True)
    hasher = Hasher(root)
    bad = [out for out, want in recorded.items() if hasher.digest(out).hash != want]
    for out in bad:
        shutil.rmtree(root / out, ignore_errors=True)
    return not bad


def _is_plain(path: str) -> bool:
    """A relative path inside the project, as the lock records outputs (the tag is not trusted)."""
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and "\\" not in path and all(p not in ("", ".", "..") for p in parts)
