"""Registering a model's version and moving a stage: each is one annotated git tag in GTO's
format (mlmake.registry.gto). A version is a commit, as in GTO (one version per commit per
model): the build registered must be the one committed at HEAD, so any clone of that commit
has the lock entry and the DVC pointer that bring its artifacts back."""

from __future__ import annotations

import re
from pathlib import Path

from mlmake.core.errors import MlmakeError
from mlmake.core.plain import Json
from mlmake.registry import gto
from mlmake.registry.git import Repo, create_tag, head_commit, show_file
from mlmake.registry.record import Record, to_message
from mlmake.registry.versions import Registry, StageEvent, Version, read_registry
from mlmake.state.lock import LOCK_FILE, Entry, Lock, parse_lock
from mlmake.state.runcache import POINTERS, pointer_path

_POINTER_OUT = re.compile(r"^- md5: ([0-9a-f]{32}(?:\.dir)?)\n  size: (\d+)\n(?:  nfiles: \d+\n)?  hash: md5\n"
                          r"  path: ([^\n]+)\n", re.MULTILINE)


def register(root: Path, model: str, lock: Lock, *, version: str | None = None,
             bump: gto.Bump = "patch") -> Version:
    """Tag HEAD as the next version of `model` (or `version`), recording its build."""
    registry = read_registry(root, fresh=True)
    repo = _repo(registry, root, "register")
    address = f"models.{model}"
    entry = lock.get(address)
    if entry is None:
        raise MlmakeError(f"{address} is not built: run `mlmake build {address}`, commit, then register it")
    _check_name(model)
    head = head_commit(repo)
    _check_committed(repo, head, address, entry)
    taken = registry.at_commit(model, head)
    if taken is not None:
        raise MlmakeError(f"{model} {taken.version} is registered at this commit ({head[:7]}) already: "
                          "a version is a commit; commit a new build to register another")
    same = next((v for v in registry.versions_of(model)
                 if v.record is not None and v.record.fingerprint == entry.fingerprint), None)
    if same is not None:
        raise MlmakeError(f"{model}: this build is {same.version} already (fingerprint {entry.fingerprint[:8]}); "
                          "change the model and build it to register a new version")
    version = _new_version(registry, model, version, bump)
    artifact = gto.artifact_name(repo.prefix, model)
    record = Record(model, address, entry.fingerprint, entry.kind, head, _outputs(root, address, entry),
                    dict(entry.metrics), _data(lock, address), repo.prefix)
    tag = gto.version_tag(artifact, version)
    create_tag(repo, tag, head, to_message(gto.register_message(artifact, version), record))
    found = read_registry(root, fresh=True).find(model, version)
    assert found is not None  # the tag just written
    return found


def promote(root: Path, model: str, version: str, stage: str) -> StageEvent:
    """Assign `stage` to a registered version (an older one: a rollback)."""
    registry = read_registry(root, fresh=True)
    repo = _repo(registry, root, "promote")
    found = registry.find(model, version)
    if found is None:
        known = ", ".join(v.version for v in registry.versions_of(model)) or "none"
        raise MlmakeError(f"{model} has no version {version} (registered: {known}); "
                          f"register one with `mlmake register {model}`")
    if gto.NAME_RE.match(stage) is None:
        raise MlmakeError(f"stage {stage!r}: use letters, digits, '-', '_' or '/', starting and ending "
                          "with a letter or a digit (GTO's rule)")
    holder = registry.stage_version(model, stage)
    if holder is not None and holder.version == version:
        raise MlmakeError(f"{model} {version} holds {stage} already")
    artifact = gto.artifact_name(repo.prefix, model)
    tag = gto.stage_tag(artifact, stage, registry.next_counter(model))
    create_tag(repo, tag, found.commit, gto.assign_message(artifact, stage, version))
    event = read_registry(root, fresh=True).stages(model).get(stage)
    assert event is not None and event.tag == tag  # the tag just written is the latest
    return event


def _repo(registry: Registry, root: Path, verb: str) -> Repo:
    if registry.repo is None:
        raise MlmakeError(f"mlmake {verb} keeps versions as git tags: {root} is not in a git repository "
                          "(run `git init` and commit the project)")
    return registry.repo


def _check_name(model: str) -> None:
    if gto.NAME_RE.match(model) is None:
        raise MlmakeError(f"models.{model}: GTO names an artifact with letters, digits, '-', '_' and '/', "
                          "starting and ending with a letter or a digit; rename the model to register it")


def _check_committed(repo: Repo, head: str, address: str, entry: Entry) -> None:
    """The build in the workspace is the one committed at HEAD (lock entry and pointer)."""
    where = f"{repo.prefix}/{LOCK_FILE}" if repo.prefix else LOCK_FILE
    raw = show_file(repo, head, where)
    committed = parse_lock(raw, f"{LOCK_FILE} at HEAD").get(address) if raw is not None else None
    pointer = f"{POINTERS}/{address}.dvc"
    shown = show_file(repo, head, f"{repo.prefix}/{pointer}" if repo.prefix else pointer)
    if committed is None or committed.fingerprint != entry.fingerprint or committed.outputs != entry.outputs \
            or shown is None:
        raise MlmakeError(f"{address}: its build is not committed (a version is a commit): "
                          f"commit {LOCK_FILE} and {POINTERS}/, then register it")


def _new_version(registry: Registry, model: str, version: str | None, bump: gto.Bump) -> str:
    versions = registry.versions_of(model)
    if version is None:
        return gto.bump(versions[-1].version, bump) if versions else gto.FIRST_VERSION
    if gto.VERSION_RE.match(version) is None:
        raise MlmakeError(f"--version {version}: a version is SemVer with a leading v (v1.2.0)")
    if registry.find(model, version) is not None:
        raise MlmakeError(f"{model} {version} is registered already")
    return version


def _outputs(root: Path, address: str, entry: Entry) -> dict[str, dict[str, Json]]:
    """The outputs with their hashes and the DVC md5s that fetch them (from the node's pointer)."""
    try:
        text = pointer_path(root, address).read_text(encoding="utf-8")
    except OSError:
        text = ""
    md5s = {_project_path(path): md5 for md5, _, path in _POINTER_OUT.findall(text)}
    return {p: {**o, **({"md5": md5s[p]} if p in md5s else {})} for p, o in sorted(entry.outputs.items())}


def _project_path(pointer_relative: str) -> str:
    parts: list[str] = [POINTERS]
    for part in pointer_relative.split("/"):
        if part == "..":
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def _data(lock: Lock, address: str) -> dict[str, str]:
    """The hashes of the data files the datasets upstream of the model read."""
    data: dict[str, str] = {}
    seen: set[str] = set()
    todo = [address]
    while todo:
        node = todo.pop()
        entry = lock.get(node)
        if entry is None or node in seen:
            continue
        seen.add(node)
        if node.startswith("datasets."):
            data.update(entry.components.inputs)
        todo += list(entry.components.upstream)
    return dict(sorted(data.items()))
