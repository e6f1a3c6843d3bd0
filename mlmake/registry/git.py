"""The git calls the registry makes: `git` as a subprocess, never through a shell. Reading
the tags is one `git for-each-ref`; each ref file it depends on is noted for the plan memo
(mlmake.core.memo), so a kept plan is not answered after a promotion."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mlmake.core import memo
from mlmake.core.errors import MlmakeError

_SEP, _END = "\x00", "\x00\x1e\x00\n"
_FORMAT = _SEP.join(["%(refname:strip=2)", "%(objecttype)", "%(*objectname)", "%(taggername)",
                     "%(taggeremail:trim)", "%(taggerdate:unix)", "%(contents)"]).replace("\x00", "%00") \
    + "%00%1e%00"
_TIMEOUT = 30


@dataclass(frozen=True, slots=True)
class GitTag:
    """An annotated tag: its name, the commit it points at, who made it, when, and its message."""

    name: str
    commit: str
    tagger: str
    email: str
    time: int  # seconds since the epoch
    message: str


@dataclass(frozen=True, slots=True)
class Repo:
    """The git repository a project sits in: its top folder and the project's place in it."""

    top: Path
    prefix: str  # the project's folder relative to the top, '/'-separated; '' at the top


def git(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run git in root; its stdout. MlmakeError with git's own message when it fails."""
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=_TIMEOUT,
                             env={**os.environ, **env} if env else None, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise MlmakeError(f"cannot run git: {exc}") from None
    if out.returncode != 0:
        raise MlmakeError(f"git {args[0]} failed: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout


def find_repo(root: Path) -> Repo | None:
    """The repository holding root, or None when it is in none."""
    try:
        top = git(root, "rev-parse", "--show-toplevel").strip()
    except MlmakeError:
        return None
    top_path = Path(top).resolve()
    prefix = root.resolve().relative_to(top_path).as_posix()
    return Repo(top_path, "" if prefix == "." else prefix)


def list_tags(repo: Repo) -> list[GitTag]:
    """Every annotated tag of the repository (lightweight tags are not GTO's)."""
    _note_refs(repo.top)
    out = git(repo.top, "for-each-ref", "refs/tags", f"--format={_FORMAT}")
    tags = []
    for record in out.split(_END):
        fields = record.split(_SEP)
        if len(fields) != 7 or fields[1] != "tag" or not fields[2]:
            continue
        name, _, commit, tagger, email, when, message = fields
        tags.append(GitTag(name, commit, tagger, email, int(when or 0), message))
    return tags


def create_tag(repo: Repo, name: str, commit: str, message: str) -> None:
    """An annotated tag on commit, with git's identity as its tagger."""
    git(repo.top, "tag", "-a", name, "-m", message, commit)


def head_commit(repo: Repo) -> str:
    return git(repo.top, "rev-parse", "--verify", "HEAD^{commit}").strip()


def show_file(repo: Repo, commit: str, path: str) -> bytes | None:
    """A file's bytes at a commit (path relative to the top), or None when it is not there."""
    try:
        out = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=repo.top, capture_output=True,
                             timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise MlmakeError(f"cannot run git: {exc}") from None
    return out.stdout if out.returncode == 0 else None


_COMMON: dict[Path, Path | None] = {}


def ref_files(top: Path) -> list[str]:
    """The files a tag listing reads: a new, moved or packed tag changes one of them."""
    if top not in _COMMON:
        try:
            common = Path(git(top, "rev-parse", "--git-common-dir").strip())
            _COMMON[top] = common if common.is_absolute() else top / common
        except MlmakeError:
            _COMMON[top] = None
    common_dir = _COMMON[top]
    if common_dir is None:
        return []
    tags = common_dir / "refs" / "tags"
    found = [str(common_dir / "packed-refs"), str(tags)]
    for folder, dirs, files in os.walk(tags):
        found += [os.path.join(folder, name) for name in dirs + files]
    return found


RefsState = tuple[tuple[str, "list[int] | None"], ...]


def refs_state(top: Path) -> RefsState:
    """What tells that the tags changed, without reading them (the stat keys of their files)."""
    return tuple((path, memo.stat_key(path)) for path in ref_files(top))


def _note_refs(top: Path) -> None:
    for path in ref_files(top):
        memo.note(path)
