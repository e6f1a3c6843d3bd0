"""The registry as the repository's tags say it is: each model's versions, which version holds
each stage, and the history of both. Read once per process per project (one `git for-each-ref`).

A stage belongs to the version of its latest assignment (GTO's default: one version per stage),
events ordered by the tag's time, then its counter; an unassignment frees it; a deregistered
version stays listed, marked so, and can still be assigned (as in GTO)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlmake.core import memo
from mlmake.registry import gto
from mlmake.registry.git import GitTag, RefsState, Repo, find_repo, list_tags, refs_state
from mlmake.registry.record import Record, from_message


@dataclass(frozen=True, slots=True)
class Version:
    """A registered version of a model."""

    model: str
    artifact: str  # GTO's name for it
    version: str
    commit: str
    tag: str
    author: str
    email: str
    time: int
    record: Record | None  # None when registered by something other than mlmake
    active: bool = True  # False once deregistered


@dataclass(frozen=True, slots=True)
class StageEvent:
    """A stage assigned to (or taken from) the version at a commit."""

    model: str
    stage: str
    version: str | None  # the version registered at the commit (None: a commit without one)
    commit: str
    tag: str
    author: str
    email: str
    time: int
    counter: int
    assigned: bool = True  # False for an unassignment


@dataclass(frozen=True)
class Registry:
    """The versions and stage events of one project's models."""

    repo: Repo | None
    versions: tuple[Version, ...] = ()
    events: tuple[StageEvent, ...] = ()  # in the order they happened
    counters: dict[str, int] = field(default_factory=dict)  # model → the largest tag counter

    def versions_of(self, model: str) -> list[Version]:
        """A model's versions, oldest (by SemVer) first."""
        return sorted((v for v in self.versions if v.model == model), key=lambda v: gto.semver_key(v.version))

    def find(self, model: str, version: str) -> Version | None:
        return next((v for v in self.versions if v.model == model and v.version == version), None)

    def at_commit(self, model: str, commit: str) -> Version | None:
        return next((v for v in self.versions if v.model == model and v.commit == commit), None)

    def stages(self, model: str) -> dict[str, StageEvent]:
        """Each stage a version of the model holds now → the assignment that gave it."""
        held: dict[str, StageEvent] = {}
        for event in self.events:
            if event.model != model:
                continue
            if event.assigned:
                held[event.stage] = event
            else:
                held.pop(event.stage, None)
        return dict(sorted(held.items()))

    def stage_version(self, model: str, stage: str) -> Version | None:
        """The version holding a stage now, or None."""
        event = self.stages(model).get(stage)
        return self.find(model, event.version) if event is not None and event.version else None

    def history(self, model: str) -> list[StageEvent]:
        return [e for e in self.events if e.model == model]

    def models(self) -> list[str]:
        return sorted({v.model for v in self.versions} | {e.model for e in self.events})

    def known_stages(self, model: str) -> list[str]:
        """Every stage the model's versions were ever assigned."""
        return sorted({e.stage for e in self.events if e.model == model})

    def next_counter(self, model: str) -> int:
        return self.counters.get(model, 0) + 1


_CACHE: dict[Path, tuple[RefsState, Registry]] = {}


def read_registry(root: Path, *, fresh: bool = False) -> Registry:
    """The registry of the project at root (empty outside a git repository); read again only
    when a tag file changed (or with fresh)."""
    key = root.resolve()
    cached = _CACHE.get(key)
    repo = cached[1].repo if cached is not None else None
    if cached is not None and repo is not None and not fresh:
        state = refs_state(repo.top)
        if state == cached[0]:
            for path, _ in state:
                memo.note(path)
            return cached[1]
    registry = _read(key)
    _CACHE[key] = (refs_state(registry.repo.top) if registry.repo is not None else (), registry)
    return registry


def _read(root: Path) -> Registry:
    repo = find_repo(root)
    if repo is None:
        return Registry(None)
    mine = [(t, p, m) for t in list_tags(repo)
            if (p := gto.parse_tag(t.name)) is not None and (m := _model(p.artifact, repo.prefix)) is not None]
    versions = _versions(mine)
    by_commit = {(v.model, v.commit): v.version for v in versions}
    events = sorted((_event(t, p, m, by_commit) for t, p, m in mine if p.action in ("assign", "unassign")),
                    key=lambda e: (e.time, e.counter))
    counters: dict[str, int] = {}
    for _, p, m in mine:
        counters[m] = max(counters.get(m, 0), p.counter or 0)
    return Registry(repo, tuple(versions), tuple(events), counters)


def _model(artifact: str, prefix: str) -> str | None:
    """The model an artifact name stands for in this project, or None for another project's."""
    folder, _, name = artifact.rpartition(":")
    return name if folder == prefix else None


def _versions(mine: list[tuple[GitTag, gto.TagName, str]]) -> list[Version]:
    gone = {(m, p.version) for _, p, m in mine if p.action == "deregister"}
    return [Version(m, p.artifact, str(p.version), t.commit, t.name, t.tagger, t.email, t.time,
                    from_message(t.message), (m, p.version) not in gone)
            for t, p, m in mine if p.action == "register"]


def _event(t: GitTag, p: gto.TagName, model: str, by_commit: dict[tuple[str, str], str]) -> StageEvent:
    return StageEvent(model, str(p.stage), by_commit.get((model, t.commit)), t.commit, t.name, t.tagger, t.email,
                      t.time, p.counter or 0, p.action == "assign")
