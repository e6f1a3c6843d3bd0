"""What a node's fingerprint is made of: its components, as typed values, and the hash of
their plain form. The lock records the plain form (one key per component beside the
fingerprint), so `to_plain` and `from_plain` are the only translation between the two:
a fingerprint is the hash of exactly what the lock records."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from mlmake.core.plain import Json
from mlmake.state.hashing import hash_json

ComponentName = Literal["config", "params", "recipe", "libraries", "inputs", "code", "env", "upstream", "lineage"]
# the order `mlmake why` lists them in; the finer diffs of planning.reasons read each of them
NAMES: Final[tuple[ComponentName, ...]] = (
    "config", "params", "recipe", "libraries", "inputs", "code", "env", "upstream", "lineage")
_WHEN_SET: Final = ("env", "lineage")  # recorded only where a node has them (other fingerprints stay as they were)


@dataclass(frozen=True, slots=True)
class Lineage:
    """A node whose outputs record its own name and every ancestor's fingerprint (a deploy manifest)."""

    node: str
    upstream: Mapping[str, str]  # ancestor address → its fingerprint

    def to_plain(self) -> dict[str, Json]:
        return {"node": self.node, "upstream": dict(self.upstream)}


@dataclass(frozen=True, slots=True)
class Components:
    """Everything that can change a node's output. `extra` keeps components this mlmake does
    not make (a newer mlmake's lock) and `unrecorded` the ones a recorded entry lacks (an older
    one's), so an entry reads back and is written again exactly as it was."""

    config: Mapping[str, Json] = field(default_factory=dict)  # the item as resolved
    params: Mapping[str, Json] = field(default_factory=dict)  # the global params it reads
    recipe: int = 0  # its kind's recipe version
    libraries: Mapping[str, str] = field(default_factory=dict)  # distribution → version
    inputs: Mapping[str, str] = field(default_factory=dict)  # data file → content hash ('' when missing)
    code: Mapping[str, str] = field(default_factory=dict)  # code file → content hash ('' when missing)
    upstream: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # node → its output read → hash
    lineage: Lineage | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # declared variable → hash of its value, or "unset"
    extra: Mapping[str, Json] = field(default_factory=dict)
    unrecorded: frozenset[ComponentName] = frozenset()

    def to_plain(self) -> dict[str, Json]:
        """The components as the lock records them, in `NAMES` order."""
        return dict(self.items())

    def items(self) -> Iterator[tuple[str, Json]]:
        """(name, plain value) of every recorded component, `NAMES` first."""
        for name in NAMES:
            if name not in self.unrecorded and (name not in _WHEN_SET or self._plain(name)):
                yield name, self._plain(name)
        yield from self.extra.items()

    def sources(self) -> dict[str, Json]:
        """Every data file and upstream node it read, with their hashes (a run record's inputs)."""
        return {**self.inputs, **{address: dict(outs) for address, outs in self.upstream.items()}}

    def value(self, name: str) -> Json:
        """One component's plain value; None when it is not recorded."""
        return self.to_plain().get(name)

    def _plain(self, name: str) -> Json:
        if name == "recipe":
            return self.recipe
        if name == "lineage":
            return self.lineage.to_plain() if self.lineage else None
        if name == "upstream":
            return {a: dict(outs) for a, outs in self.upstream.items()}
        value: Mapping[str, Json] = getattr(self, name)
        return dict(value)

    @classmethod
    def from_plain(cls, data: Mapping[str, Json]) -> Components:
        """Components as a lock entry records them; ComponentError for one of the wrong shape."""
        unrecorded = frozenset(n for n in NAMES if n not in data and n not in _WHEN_SET)
        extra = {k: v for k, v in data.items() if k not in NAMES}
        return cls(config=_mapping(data, ("config",)), params=_mapping(data, ("params",)),
                   recipe=_recipe(data.get("recipe", 0)), libraries=_texts(data, ("libraries",)),
                   inputs=_texts(data, ("inputs",)), code=_texts(data, ("code",)), env=_texts(data, ("env",)),
                   upstream=_upstream(data),
                   lineage=_lineage(data.get("lineage")), extra=extra, unrecorded=unrecorded)


def fingerprint(components: Components) -> str:
    """The node's fingerprint: the hash of its components as the lock records them."""
    return hash_json(components.to_plain())


class ComponentError(ValueError):
    """A recorded component of the wrong shape (a hand-edited lock): where, and what was expected."""

    def __init__(self, path: tuple[str, ...], expected: str, value: Json) -> None:
        super().__init__(f"{'.'.join(path)}: expected {expected}")
        self.path, self.expected, self.value = path, expected, value


def _mapping(data: Mapping[str, Json], path: tuple[str, ...]) -> dict[str, Json]:
    value = data.get(path[-1], {})
    if not isinstance(value, dict):
        raise ComponentError(path, "a mapping", value)
    return value


def _texts(data: Mapping[str, Json], path: tuple[str, ...]) -> dict[str, str]:
    value = _mapping(data, path)
    for key, text in value.items():
        if not isinstance(text, str):
            raise ComponentError(path + (key,), "a string", text)
    return {k: str(v) for k, v in value.items()}


def _recipe(value: Json) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ComponentError(("recipe",), "a number", value)
    return value


def _upstream(data: Mapping[str, Json]) -> dict[str, Mapping[str, str]]:
    value = _mapping(data, ("upstream",))
    return {address: _texts(value, ("upstream", address)) for address in value}


def _lineage(value: Json) -> Lineage | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ComponentError(("lineage",), "a mapping", value)
    if not isinstance(value.get("node"), str):
        raise ComponentError(("lineage", "node"), "a string", value.get("node"))
    return Lineage(str(value["node"]), _texts(value, ("lineage", "upstream")))
