"""The serving bundle of an `http` target: everything `mlmake serve` needs at request
time, in one folder that can be copied anywhere (a docker image included).

    manifest.json   format, model fingerprint, lineage, metrics, versions, file hashes
    model.json      the booster (xgboost JSON), or the files a plugin's format lists
                    (signature.json's `files`, see scoring.model_files)
    signature.json  the inputs with their types and category lists, in column order
    metrics.json    the model's held-out metrics
    store.parquet   the online store (key + inputs), when the feature set declares a key
    request.json, request.*.parquet, lookup.*.parquet
                    what computes the features of raw rows, when the feature set can run
                    per request (ml/requestbundle.py); the manifest's "request" says why not

The manifest is written last and holds the hash of every other file, so a reader can
tell a complete bundle from one caught mid-copy. Nothing in it depends on the time, the
machine or the build's history: what it records (the target's name, the fingerprints of
everything upstream) is part of the target's fingerprint, so the same inputs give the
same bytes. Gate verdicts are not in it: gates are judged by the build, not fingerprinted."""

from __future__ import annotations

import os
import shutil
from importlib import metadata
from typing import Any

from mlmake import __version__
from mlmake.core.errors import NodeError
from mlmake.core.kind import Task
from mlmake.ml.requestbundle import write_request
from mlmake.ml.scoring import METRICS_FILE, SIGNATURE_FILE, model_files
from mlmake.ml.storefolder import copy_store
from mlmake.ml.tables import read_json, scan_upstream, upstream_folder, write_json, write_parquet

MANIFEST_FILE = "manifest.json"
STORE_FILE = "store.parquet"
BUNDLE_FORMAT = 1
LOCK_FILE = "mlproject.lock"
RUNTIME_LIBRARIES = ("polars", "xgboost", "numpy", "pyarrow")


def hash_file(path: str) -> str:
    """The content hash mlmake uses everywhere (blake3, 16 bytes, hex)."""
    from blake3 import blake3

    digest = blake3()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return str(digest.hexdigest(length=16))


def model_address(task: Task) -> str:
    return f"models.{task.config['model']}"


def write_bundle(task: Task, out: str) -> dict[str, Any]:
    """Fill `out` with the bundle of the task's model; returns the manifest."""
    model_dir = upstream_folder(task, model_address(task))
    _copy(task, model_dir, SIGNATURE_FILE, out)
    signature = read_json(os.path.join(out, SIGNATURE_FILE))
    files = [*model_files(signature), SIGNATURE_FILE, METRICS_FILE]
    for name in files:
        if name != SIGNATURE_FILE:
            _copy(task, model_dir, name, out)
    store: dict[str, Any] | None
    if task.config.get("store"):  # a store node's rows and lookup tables (kinds/store/)
        store, request, written = copy_store(task, signature, out, STORE_FILE)
    else:
        store = _write_store(task, signature, out)
        request, written = write_request(task, signature, out)
    if store:
        files.append(STORE_FILE)
    files += written
    manifest = describe(task, os.path.join(out, files[0]), signature)
    manifest["store"] = store
    manifest["request"] = request
    manifest["files"] = {name: hash_file(os.path.join(out, name)) for name in files}
    write_json(os.path.join(out, MANIFEST_FILE), manifest)
    return manifest


def _copy(task: Task, model_dir: str, name: str, out: str) -> None:
    source = os.path.join(model_dir, name)
    if not os.path.isfile(source):
        raise NodeError(f"{os.path.relpath(source, task.root)} is missing; build {model_address(task)} first")
    shutil.copyfile(source, os.path.join(out, name))


def describe(task: Task, model_file: str, signature: dict[str, Any]) -> dict[str, Any]:
    """What a deploy target records about its model: fingerprint, lineage, metrics, versions."""
    address = model_address(task)
    nodes = lock_nodes(task.root)
    registry = task.config.get("registry")  # a version from the registry, not the workspace's model
    entry = {"fingerprint": registry["fingerprint"]} if registry else nodes.get(address) or {}
    model_hash = hash_file(model_file)
    summary = read_json(os.path.join(upstream_folder(task, address), METRICS_FILE))
    libraries = [*RUNTIME_LIBRARIES, *(str(n) for n in signature.get("libraries") or [])]
    return {
        "format": BUNDLE_FORMAT,
        "deploy": task.address.partition(".")[2],
        "kind": task.config["kind"],
        "model": {
            "name": task.config["model"], "address": address,
            "fingerprint": str(entry.get("fingerprint") or model_hash),
            "fingerprint_from": ("registry" if registry else LOCK_FILE) if entry.get("fingerprint")
            else os.path.basename(model_file),
            "hash": model_hash, "task": signature.get("task"), "objective": signature.get("objective"),
            "features": signature.get("features"), "key": signature.get("key") or [],
            "target": signature.get("target"), "classes": signature.get("classes"),
        },
        "metrics": summary.get("metrics") or {},
        # a version's own lineage is in its registry record: here, what else the target reads
        "lineage": lineage(nodes, ([] if registry else [address]) + [a for a in task.upstream if a != address]),
        "versions": {"mlmake": __version__, **{name: _version(name) for name in libraries}},
        **({"registry": {"version": registry["version"], "stage": registry["stage"]}} if registry else {}),
    }


def _version(name: str) -> str:
    for dist in (name, f"{name}-cpu"):  # xgboost ships as xgboost-cpu on Linux
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return ""


# --- the online store ---------------------------------------------------------------


def _write_store(task: Task, signature: dict[str, Any], out: str) -> dict[str, Any] | None:
    """Copy the key and input columns of the model's keyed feature table into the bundle."""
    key = [str(k) for k in signature.get("key") or []]
    address = f"features.{signature.get('features')}"
    if not key or address not in task.upstream:
        return None
    names = key + [str(i["name"]) for i in signature["inputs"]]
    frame = scan_upstream(task, address).collect()
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise NodeError(f"the table of {address} lacks {', '.join(missing)}, which the model was trained on; "
                        f"rebuild {model_address(task)}")
    write_parquet(frame.select(names), os.path.join(out, STORE_FILE))
    return {"file": STORE_FILE, "key": key, "rows": frame.height, "source": address}


# --- lineage from mlproject.lock -------------------------------------------------------


def lock_nodes(root: str) -> dict[str, dict[str, Any]]:
    """The node entries of the project's mlproject.lock ({} when there is none yet)."""
    from mlmake.core.errors import SpecError
    from mlmake.core.source import load_text

    try:
        with open(os.path.join(root, LOCK_FILE), encoding="utf-8") as fh:
            data = load_text(fh.read(), LOCK_FILE).data
    except (OSError, UnicodeDecodeError, SpecError):
        return {}
    nodes = data.get("nodes") if isinstance(data, dict) else None
    return {str(a): e for a, e in nodes.items() if isinstance(e, dict)} if isinstance(nodes, dict) else {}


def lineage(nodes: dict[str, dict[str, Any]], start: list[str]) -> dict[str, Any]:
    """The recorded fingerprints and output hashes of `start` and everything upstream of
    it, and the hashes of the data files the datasets among them read."""
    seen: dict[str, Any] = {}
    todo = list(start)
    while todo:
        address = todo.pop()
        entry = nodes.get(address)
        if entry is None or address in seen:
            continue
        outputs = entry.get("outputs") or {}
        seen[address] = {"kind": entry.get("kind"), "fingerprint": entry.get("fingerprint"),
                         "outputs": {p: o.get("hash") for p, o in outputs.items() if isinstance(o, dict)}}
        todo += list(entry.get("upstream") or {})
    data: dict[str, Any] = {}
    for address in seen:
        if address.startswith("datasets."):
            entry = nodes[address]
            data.update(entry.get("inputs") or {})
            for files in (entry.get("upstream") or {}).values():
                data.update(files if isinstance(files, dict) else {})
    return {"nodes": dict(sorted(seen.items())), "data": dict(sorted(data.items()))}
