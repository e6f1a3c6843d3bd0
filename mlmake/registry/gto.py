"""GTO's conventions for versions and stages as git tags (iterative/gto: gto/constants.py,
gto/tag.py, gto/registry.py), so that `gto show` and `gto history` read what mlmake writes:

    churn_xgb@v0.0.1                  registers version v0.0.1 (an annotated tag on its commit)
    churn_xgb@v0.0.1!                 deregisters it
    churn_xgb#production#3            assigns stage production to the version at the tag's commit
    churn_xgb#production!#4           unassigns it
    examples/churn=churn_xgb@v0.0.1   an artifact in a subfolder of the repository
                                      (GTO's name `examples/churn:churn_xgb`, `:` written `=`)

The counter after a stage is one more than the largest counter among the artifact's tags, as
GTO's `name_tag` computes it. Stdlib only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Action = Literal["register", "deregister", "assign", "unassign", "deprecate"]

_DIRNAME = "[a-zA-Z0-9-_./]+"
_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9-/_]*[a-zA-Z0-9])?"
_SEMVER = (r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
           r"(?:-(?P<prerelease>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
           r"(?:\+(?P<buildmetadata>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?")
_FULLNAME_IN_TAG = f"(?P<dirname>{_DIRNAME}=)?(?P<name>{_NAME})"
TAG_RE = re.compile(
    f"^(?P<artifact>{_FULLNAME_IN_TAG})(((#(?P<stage>{_NAME})|@(?P<version>v{_SEMVER}))(?P<cancel>!?))"
    r"|@((?P<deprecated>deprecated)|(?P<created>created)))(#(?P<counter>[0-9]+))?$")
NAME_RE = re.compile(f"^{_NAME}$")
VERSION_RE = re.compile(f"^v{_SEMVER}$")
FIRST_VERSION = "v0.0.1"  # GTO's SemVer.get_minimal()


@dataclass(frozen=True, slots=True)
class TagName:
    """What a GTO tag name says."""

    artifact: str  # GTO's name: `churn_xgb`, or `examples/churn:churn_xgb`
    action: Action
    version: str | None = None
    stage: str | None = None
    counter: int | None = None


def artifact_name(prefix: str, model: str) -> str:
    """GTO's artifact name of a model whose project sits at `prefix` in the repository ('' at its top)."""
    return f"{prefix}:{model}" if prefix else model


def parse_tag(tag: str) -> TagName | None:
    """A tag name in GTO's format, or None for any other tag."""
    m = TAG_RE.match(tag)
    if m is None:
        return None
    artifact = m["artifact"].replace("=", ":")
    counter = int(m["counter"]) if m["counter"] else None
    cancel = m["cancel"] == "!"
    if m["version"]:
        return TagName(artifact, "deregister" if cancel else "register", version=m["version"], counter=counter)
    if m["stage"]:
        return TagName(artifact, "unassign" if cancel else "assign", stage=m["stage"], counter=counter)
    return TagName(artifact, "deprecate", counter=counter)  # `@deprecated` (`@created` is never written)


def version_tag(artifact: str, version: str) -> str:
    return f"{_in_tag(artifact)}@{version}"


def stage_tag(artifact: str, stage: str, counter: int) -> str:
    return f"{_in_tag(artifact)}#{stage}#{counter}"


def _in_tag(artifact: str) -> str:
    return artifact.replace(":", "=")


def register_message(artifact: str, version: str) -> str:
    return f"Registering artifact {artifact} version {version}"


def assign_message(artifact: str, stage: str, version: str) -> str:
    return f"Assigning stage {stage} to artifact {artifact} version {version}"


def semver_key(version: str) -> tuple[int, int, int, int, str]:
    """Order of versions: by major, minor, patch; a pre-release before its release."""
    m = VERSION_RE.match(version)
    if m is None:
        return (-1, -1, -1, -1, version)
    pre = m["prerelease"] or ""
    return (int(m["major"]), int(m["minor"]), int(m["patch"]), 0 if pre else 1, pre)


Bump = Literal["major", "minor", "patch"]


def bump(version: str, part: Bump = "patch") -> str:
    """The next version after `version` (GTO's default bump is the patch)."""
    major, minor, patch, _, _ = semver_key(version)
    if part == "major":
        return f"v{major + 1}.0.0"
    if part == "minor":
        return f"v{major}.{minor + 1}.0"
    return f"v{major}.{minor}.{patch + 1}"


def is_valid_dirname(prefix: str) -> bool:
    return not prefix or re.fullmatch(_DIRNAME, prefix) is not None
