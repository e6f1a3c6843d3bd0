"""The outputs of a registered version, brought back for the deploy targets that follow it
(`model: churn_xgb@production`) into .mlmake/registry/FINGERPRINT/…, never into the workspace's
own model folder: the model built here may be another version.

From the workspace when the model built here is that version (its outputs have the recorded
hashes), else from the project's DVC cache and a remote in a folder on this machine (the
machine's default remote included) by the md5s its tag records, checked against the recorded
hashes on the way (mlmake.remote.localrestore). A version whose objects are in neither place is
an error that says how to get them."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from mlmake.core.errors import MlmakeError
from mlmake.core.workdir import move_into_place, staging_root
from mlmake.registry import FOLDER
from mlmake.remote.localrestore import LocalRestore, Refused
from mlmake.state.hashing import Hasher
from mlmake.state.remotecache import Location, local_folder


def bring_back_all(root: Path, configs: Iterable[Mapping[str, Any]], location: Location,
                   warn: Callable[[str], None]) -> None:
    """Every followed version not brought back yet (each folder is made whole, then moved in)."""
    for config in configs:
        if not (root / str(config["folder"])).is_dir():
            bring_back(root, config, location, warn)


def bring_back(root: Path, config: Mapping[str, Any], location: Location, warn: Callable[[str], None]) -> None:
    """One version's outputs into its folder; MlmakeError naming the version when they cannot be found."""
    fingerprint = str(config["fingerprint"])
    outputs: dict[str, dict[str, Any]] = dict(config["outputs"])
    base = f"{FOLDER}/{fingerprint}"
    if _from_workspace(root, base, outputs):
        return
    local = LocalRestore(root, local_folder(root, location) if location.is_local else None, warn,
                         repair=location.automatic)
    pointed = {f"{base}/{p}": str(o.get("md5") or "") for p, o in outputs.items()}
    recorded = {f"{base}/{p}": str(o.get("hash") or "") for p, o in outputs.items()}
    try:
        if all(pointed.values()) and local.usable() and local.restore_outputs(pointed, recorded, fetch=True):
            return
    except Refused as exc:
        raise MlmakeError(f"version {config['version']} of the model (fingerprint {fingerprint[:8]}): {exc}") from None
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
