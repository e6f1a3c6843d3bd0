"""The model registry: versions and stages as annotated git tags in GTO's format, so that
`gto show` and `gto history` read them.

    read_registry(root) -> Registry        the tags, read once per process
    Registry.versions_of(model)            a model's versions, oldest first (SemVer)
    Registry.find(model, version)          one Version (its Record: fingerprint, outputs, metrics, data, commit)
    Registry.stage_version(model, stage)   the Version holding a stage now, or None
    Registry.stages(model)                 stage -> the StageEvent that gave it (who, when, tag)
    register(...) / promote(...)           mlmake.registry.actions: write one tag each

It sits between the kinds (deploy targets that follow a stage, model cards) and the state
layer it reads (the lock at a commit). Git is run as a subprocess, never through a shell."""

from mlmake.registry.record import Record
from mlmake.registry.versions import Registry, StageEvent, Version, read_registry

__all__ = ["FOLDER", "Record", "Registry", "StageEvent", "Version", "read_registry", "version_folder"]

FOLDER = ".mlmake/registry"  # where a build brings back the outputs of the versions deploy targets follow


def version_folder(fingerprint: str, output: str) -> str:
    """The project-relative folder a version's output is brought back into (local state)."""
    return f"{FOLDER}/{fingerprint}/{output}"
