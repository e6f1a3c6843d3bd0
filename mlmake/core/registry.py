"""The node kinds mlmake knows: the built-in ones and those installed through the `mlmake.kinds`
entry-point group, loaded by name so that the core never imports a kind. A kind that cannot be
used (a missing member, two kinds with one name, two default kinds in one section) is an error
at start-up that names the distributions to blame."""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass
from functools import cache
from typing import Any

from mlmake.core.errors import MlmakeError
from mlmake.core.kind import REQUIRED, Kind

GROUP = "mlmake.kinds"
BUILTIN = (
    ("dataset", "mlmake.kinds.dataset:KIND"),
    ("features", "mlmake.kinds.features:KIND"),
    ("model", "mlmake.kinds.model:KIND"),
    ("cmd", "mlmake.kinds.cmd:KIND"),
    ("http", "mlmake.kinds.http:KIND"),
    ("batch", "mlmake.kinds.batch:KIND"),
    ("docker", "mlmake.kinds.docker:KIND"),
    ("store", "mlmake.kinds.store:KIND"),
    ("card", "mlmake.kinds.card:KIND"),
    ("monitor", "mlmake.kinds.monitor:KIND"),
)
BUILTIN_ORIGIN = "mlmake"
RESERVED = ("version", "project", "description", "params", "environments", "remote")  # the file's own keys


class KindError(MlmakeError):
    """An installed kind that cannot be used."""


@dataclass(frozen=True, slots=True)
class Registered:
    """A kind and where it came from."""

    kind: Kind[Any]
    origin: str  # "mlmake", or "mlmake-sklearn 0.1.0 (entry point sklearn = mlmake_sklearn:KIND)"


@dataclass(frozen=True)
class Registry:
    """Every usable kind, built-in ones first, then by distribution and entry-point name."""

    entries: tuple[Registered, ...]

    @property
    def kinds(self) -> tuple[Kind[Any], ...]:
        return tuple(r.kind for r in self.entries)

    def sections(self) -> tuple[str, ...]:
        """The node sections of the file, in order."""
        return tuple(dict.fromkeys(k.section for k in self.kinds))

    def in_section(self, section: str) -> tuple[Kind[Any], ...]:
        return tuple(k for k in self.kinds if k.section == section)

    def is_shared(self, section: str) -> bool:
        """Whether items of the section say which kind they are with a `kind:` key."""
        kinds = self.in_section(section)
        return len(kinds) > 1 or not all(k.default for k in kinds)

    def for_item(self, section: str, data: Any) -> Kind[Any] | None:
        """The kind of an item: its `kind:` key in a shared section, else the section's default."""
        chosen = data.get("kind") if isinstance(data, dict) and self.is_shared(section) else None
        kinds = self.in_section(section)
        if chosen is None:
            return next((k for k in kinds if k.default), None)
        return next((k for k in kinds if k.name == chosen), None)

    def by_name(self, name: str) -> Kind[Any]:
        """The kind of a node kind name (what the lock records)."""
        for kind in self.kinds:
            if kind.name == name:
                return kind
        raise KeyError(name)

    def word(self, section: str) -> str:
        """How messages name an item of a section ("feature set")."""
        kinds = self.in_section(section)
        return next((k.word for k in kinds if k.default), kinds[0].word if len(kinds) == 1 else "node")


@cache
def registry() -> Registry:
    """The kinds of this installation (loaded once per process)."""
    entries = list(builtin().entries) + [_load(value, origin) for value, origin in _installed()]
    _check_unique(entries)
    return Registry(tuple(entries))


@cache
def builtin() -> Registry:
    """The kinds that come with mlmake."""
    return Registry(tuple(_load(value, BUILTIN_ORIGIN) for _, value in BUILTIN))


def _installed() -> list[tuple[str, str]]:
    """(entry point value, origin) of every third-party kind, by distribution then name.

    Read from the dist-info folders on sys.path as importlib.metadata would (the first
    distribution of a name wins), without importing it: it costs more than a plan's lookups."""
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for folder in sys.path:
        for info in _dist_infos(folder or "."):
            dist, _, version = info.removesuffix(".dist-info").partition("-")
            key = re.sub(r"[-_.]+", "_", dist).lower()
            if key in seen:
                continue
            seen.add(key)
            entries = _group(os.path.join(folder or ".", info, "entry_points.txt"))
            if entries and key != BUILTIN_ORIGIN:  # the built-in kinds are loaded above, also from a source tree
                label = f"{_name(os.path.join(folder or '.', info)) or dist} {version}"
                found += [(value, f"{label} (entry point {name} = {value})") for name, value in entries]
    return sorted(found, key=lambda f: f[1])


def _dist_infos(folder: str) -> list[str]:
    try:
        return sorted(e for e in os.listdir(folder) if e.endswith(".dist-info"))
    except OSError:
        return []


def _group(path: str) -> list[tuple[str, str]]:
    """The `name = value` lines of the [mlmake.kinds] section of an entry_points.txt."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    entries, inside = [], False
    for line in (raw.strip() for raw in lines):
        if line.startswith("["):
            inside = line == f"[{GROUP}]"
        elif inside and "=" in line and not line.startswith(("#", ";")):
            name, _, value = line.partition("=")
            entries.append((name.strip(), value.strip()))
    return entries


def _name(info: str) -> str:
    """The distribution's name as its METADATA spells it."""
    try:
        with open(os.path.join(info, "METADATA"), encoding="utf-8") as f:
            for line in f:
                if line.startswith("Name:"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return ""


def _load(value: str, origin: str) -> Registered:
    module_name, _, attr = value.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in filter(None, attr.split(".")):
            target = getattr(target, part)
    except Exception as exc:  # a broken plugin must not look like a bug in mlmake
        raise KindError(f"cannot load the kind '{value}' from {origin}: {type(exc).__name__}: {exc}") from None
    missing = [m for m in REQUIRED if not hasattr(target, m)]
    if missing:
        raise KindError(f"the kind '{value}' from {origin} has no {', '.join(missing)}: "
                        "a kind needs every member of mlmake.core.kind.Kind")
    return Registered(target, origin)


def _check_unique(entries: list[Registered]) -> None:
    names: dict[str, Registered] = {}
    defaults: dict[str, Registered] = {}
    for entry in entries:
        kind = entry.kind
        if kind.section in RESERVED:
            raise KindError(f"the kind '{kind.name}' from {entry.origin} claims the section '{kind.section}', "
                            "which is a key of every project file; a kind needs a section of its own")
        if kind.name in names:
            raise KindError(f"two kinds are named '{kind.name}': one from {names[kind.name].origin}, "
                            f"one from {entry.origin}; uninstall one of them")
        names[kind.name] = entry
        if kind.default and kind.section in defaults:
            raise KindError(f"two kinds claim the section '{kind.section}' as its default kind: "
                            f"'{defaults[kind.section].kind.name}' from {defaults[kind.section].origin} and "
                            f"'{kind.name}' from {entry.origin}; a kind that adds to a section sets default = False")
        if kind.default:
            defaults[kind.section] = entry
