"""mlproject.lock: what was built, per node. Versioned, sorted, diff-friendly YAML
with nothing machine- or path-specific, written atomically (temp file + rename).

Reading the YAML back is the slow part of a no-op plan, so a JSON copy keyed by
the lock's content hash is kept in .mlmake/cache/."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mlmake.core.errors import Diagnostic, MlmakeError, Span
from mlmake.core.plain import Json
from mlmake.core.workdir import LOCK_PARSE, VERSIONS, read_json_store, write_atomic, write_cache
from mlmake.state.fingerprint import ComponentError, Components
from mlmake.state.hashing import hash_bytes

LOCK_FILE = "mlproject.lock"
LOCK_VERSION = 1
MAX_DEPTH = 100  # a lock mlmake writes nests a node's configuration; far deeper is not a lock
_CACHE = LOCK_PARSE
_RESTORE = f"restore it from git (git checkout {LOCK_FILE})"
_HEADER = "# Written by mlmake after each successful node. Commit it; do not edit it by hand.\n"


Output = dict[str, Json]  # one output as built: {"hash", "size"}
_FIELDS = ("fingerprint", "kind", "outputs", "metrics", "gates", "code_bytes")  # an entry's keys beside its components


@dataclass(frozen=True, slots=True)
class Entry:
    """One node as it was last built."""

    fingerprint: str
    kind: str
    components: Components
    outputs: dict[str, Output] = field(default_factory=dict)  # declared path → its hash and size
    metrics: dict[str, Json] = field(default_factory=dict)
    gates: dict[str, str] = field(default_factory=dict)  # the gates its metrics passed (not fingerprinted)
    # python code hashed by meaning → its bytes' hash as built (not fingerprinted: plan names a reformat)
    code_bytes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Json]:
        """The entry as the lock records it: its components beside the fingerprint."""
        gates: dict[str, Json] = {"gates": dict(self.gates)} if self.gates else {}
        code: dict[str, Json] = {"code_bytes": dict(self.code_bytes)} if self.code_bytes else {}
        return {"fingerprint": self.fingerprint, "kind": self.kind, **self.components.to_plain(),
                "outputs": {p: dict(o) for p, o in self.outputs.items()}, "metrics": dict(self.metrics), **gates,
                **code}

    def scores(self) -> dict[str, float]:
        """Its numeric metrics (what a relative gate compares with)."""
        return {m: float(v) for m, v in self.metrics.items() if isinstance(v, (int, float))}

    @classmethod
    def from_dict(cls, data: Mapping[str, Json]) -> Entry:
        """An entry as the lock records it; ValueError/TypeError/KeyError when malformed."""
        components = Components.from_plain({k: v for k, v in data.items() if k not in _FIELDS})
        return cls(str(data["fingerprint"]), str(data.get("kind", "")), components,
                   _outputs(data.get("outputs")), _mapping(data.get("metrics")),
                   {str(k): str(v) for k, v in _mapping(data.get("gates")).items()},
                   {str(k): str(v) for k, v in _mapping(data.get("code_bytes")).items()})


def _mapping(value: Json) -> dict[str, Json]:
    if not value:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {type(value).__name__}")
    return value


def _outputs(value: Json) -> dict[str, Output]:
    return {p: _mapping(o) for p, o in _mapping(value).items()}


@dataclass(frozen=True)
class Lock:
    nodes: dict[str, Entry] = field(default_factory=dict)
    # each entry's YAML once written, so writing the lock after every node of a build stays linear
    rendered: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def get(self, address: str) -> Entry | None:
        return self.nodes.get(address)


def read_lock(root: Path) -> Lock:
    """The project's lock; an absent file is an empty lock."""
    path = root / LOCK_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Lock()
    except OSError as exc:
        raise MlmakeError(f"cannot read {LOCK_FILE}: {exc}") from None
    data = _cached(root, raw)
    if data is None:
        data = parse_lock_data(raw, LOCK_FILE)
        _write_cache(root, raw, data)
    return _to_lock(data)


def parse_lock(raw: bytes, where: str) -> Lock:
    """A lock from its bytes (e.g. as stored at a git revision)."""
    return _to_lock(parse_lock_data(raw, where))


def _cached(root: Path, raw: bytes) -> dict[str, Json] | None:
    cached = read_json_store(root / _CACHE, _CACHE, _warn)
    if cached is not None and cached.get("key") == hash_bytes(raw):
        data = cached.get("data")
        return data if isinstance(data, dict) else None
    return None


def _warn(message: str) -> None:
    from mlmake.core import terminal

    terminal.warn_line(message)


def parse_lock_data(raw: bytes, where: str) -> dict[str, Json]:
    """The lock's data, checked to be a lock: every problem is an error naming its line."""
    from mlmake.core.errors import SpecError
    from mlmake.core.source import load_text

    try:
        text = raw.decode("utf-8")
        _check_depth(text, where)
        doc = load_text(text, where)
    except (SpecError, UnicodeDecodeError, RecursionError) as exc:
        detail = exc.render() if isinstance(exc, SpecError) else f"{where}: {_why(exc)}"
        raise MlmakeError(f"{where} is not readable:\n{detail}\nhint: {_RESTORE}") from None
    data = doc.data
    if not isinstance(data, dict) or data.get("lock_version") != LOCK_VERSION:
        version = data.get("lock_version") if isinstance(data, dict) else None
        raise MlmakeError(f"{where}: lock_version {version!r} is not one this mlmake reads "
                          f"({LOCK_VERSION}); upgrade mlmake or restore the file from git")
    problems = _shape_problems(data)
    if problems:
        body = "\n".join(doc.diagnostic(path, message).render() for path, message in problems)
        raise MlmakeError(f"{where} is malformed:\n{body}\nhint: {_RESTORE}")
    return data


def _why(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to be read"
    return str(exc)


def _check_depth(text: str, where: str) -> None:
    """Refuse nesting far past what mlmake writes before the parser recurses into it: each
    level of a block takes at least one column of indentation, each flow level a bracket."""
    for number, line in enumerate(text.splitlines(), 1):
        body = line.lstrip(" -")
        depth = (len(line) - len(body)) // 2 + body.count("[") + body.count("{")
        if depth > MAX_DEPTH:
            found = Diagnostic(Span(where, number, 1), "", f"nested deeper than {MAX_DEPTH} levels", "",
                               line.strip()[:120])
            raise MlmakeError(f"{where} is not readable:\n{found.render()}\nhint: {_RESTORE}")


_Problem = tuple[tuple[str | int, ...], str]


def _shape_problems(data: dict[str, Json]) -> list[_Problem]:
    nodes = data.get("nodes")
    if nodes is None:
        return []
    if not isinstance(nodes, dict):
        return [(("nodes",), f"expected a mapping of nodes, got {_kind(nodes)}")]
    found: list[_Problem] = []
    for address, entry in nodes.items():
        here: tuple[str | int, ...] = ("nodes", address)
        if not isinstance(entry, dict):
            found.append((here, f"expected a mapping, got {_kind(entry)}"))
            continue
        if not isinstance(entry.get("fingerprint"), str):
            found.append((here + ("fingerprint",), "expected a fingerprint string"))
        for key in ("outputs", "metrics", "code_bytes"):
            value = entry.get(key)
            if value is not None and not isinstance(value, dict):
                found.append((here + (key,), f"expected a mapping, got {_kind(value)}"))
        outputs = entry.get("outputs")
        for out, info in outputs.items() if isinstance(outputs, dict) else ():
            if not isinstance(info, dict):
                found.append((here + ("outputs", out), f"expected a mapping, got {_kind(info)}"))
        try:
            Components.from_plain({k: v for k, v in entry.items() if k not in _FIELDS})
        except ComponentError as exc:
            found.append((here + exc.path, f"expected {exc.expected}, got {_kind(exc.value)}"))
    return found


def _kind(value: Json) -> str:
    names = {str: "a string", list: "a list", dict: "a mapping", bool: "a boolean", int: "a number",
             float: "a number", type(None): "nothing"}
    return names.get(type(value), type(value).__name__)


def _write_cache(root: Path, raw: bytes, data: dict[str, Json]) -> None:
    body = {"version": VERSIONS[_CACHE], "key": hash_bytes(raw), "data": data}
    write_cache(root / _CACHE, json.dumps(body))


def _to_lock(data: dict[str, Json]) -> Lock:
    nodes = data.get("nodes") or {}
    try:
        if not isinstance(nodes, dict):
            raise TypeError("nodes is not a mapping")
        return Lock({str(a): Entry.from_dict(_mapping(e)) for a, e in nodes.items()})
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise MlmakeError(f"{LOCK_FILE} has a malformed entry ({exc}); {_RESTORE}") from None


def render_lock(lock: Lock) -> str:
    """The lock's text: sorted, block-style YAML (what dump_yaml writes for the whole body)."""
    parts = [_HEADER, f"lock_version: {LOCK_VERSION}\n", "nodes:\n" if lock.nodes else "nodes: {}\n"]
    for address in sorted(lock.nodes, key=str):
        text = lock.rendered.get(address)
        if text is None:
            text = lock.rendered[address] = "".join(_lines({address: lock.nodes[address].to_dict()}, 2))
        parts.append(text)
    return "".join(parts)


def write_lock(root: Path, lock: Lock, *, cache: bool = True) -> None:
    """Write the lock atomically: readers see the old file or the new one, never half.
    A build writes after every node with cache=False and refreshes the JSON copy once at the end."""
    text = render_lock(lock)
    write_atomic(root / LOCK_FILE, text)
    if cache:
        cache_lock(root, lock, text)


def cache_lock(root: Path, lock: Lock, text: str | None = None) -> None:
    """Refresh the JSON copy of the lock that spares the next read a YAML parse."""
    text = render_lock(lock) if text is None else text
    body: dict[str, Json] = {"lock_version": LOCK_VERSION, "nodes": {a: e.to_dict() for a, e in lock.nodes.items()}}
    _write_cache(root, text.encode("utf-8"), body)


def with_entry(lock: Lock, address: str, entry: Entry | None) -> Lock:
    """A new lock with one entry replaced (or removed when entry is None)."""
    nodes = dict(lock.nodes)
    rendered = {a: t for a, t in lock.rendered.items() if a != address}
    if entry is None:
        nodes.pop(address, None)
    else:
        nodes[address] = entry
    return Lock(nodes, rendered)


# --- a small deterministic YAML writer: sorted keys, block style, quoted strings --------

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}
_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff]")


def dump_yaml(value: dict[str, Json] | list[Json]) -> str:
    """YAML for JSON-like data; every string is double-quoted, every mapping sorted."""
    return "".join(_lines(value, 0))


def _scalar(value: Json) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}[str(value)]
        return repr(value)
    return _quote(str(value))


def _quote(text: str) -> str:
    """A YAML double-quoted string that reads back exactly: characters YAML would fold or
    refuse (C1 controls, line and paragraph separators, BOM) become \\u escapes."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(text, ensure_ascii=False))


def _key(key: str | int) -> str:
    text = str(key)
    return text if _PLAIN_KEY.match(text) and text.lower() not in _RESERVED else _quote(text)


def _lines(value: dict[str, Json] | list[Json], indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for k in sorted(value, key=str):
            v = value[k]
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{_key(k)}:\n")
                out.extend(_lines(v, indent + 2))
            else:
                out.append(f"{pad}{_key(k)}: {_inline(v)}\n")
    else:
        for v in value:
            if isinstance(v, (dict, list)) and v:
                inner = _lines(v, indent + 2)
                out.append(f"{pad}- {inner[0].lstrip()}")
                out.extend(inner[1:])
            else:
                out.append(f"{pad}- {_inline(v)}\n")
    return out


def _inline(value: Json) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)
