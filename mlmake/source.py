"""Reads a YAML file once, safely, into plain data plus the Span of every key path.

We compose the node tree ourselves instead of constructing objects, so no tag can
build a Python object, aliases are expanded under a budget (no "billion laughs"),
and every key and value keeps its line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from mlmake.errors import Diagnostic, Span, SpecError

Path = tuple[str | int, ...]

_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_STD}{t}" for t in ("str", "int", "float", "bool", "null")}
_TIMESTAMP = f"{_STD}timestamp"
_MERGE = f"{_STD}merge"
ALIAS_BUDGET = 10_000  # nodes an alias may expand to, in all


@dataclass(frozen=True)
class Document:
    """Plain data (dict/list/scalars) with the spans of its keys and values."""

    file: str
    data: Any
    lines: tuple[str, ...]
    key_spans: dict[Path, Span] = field(default_factory=dict)
    value_spans: dict[Path, Span] = field(default_factory=dict)
    # after resolve: node address → param → {"value", "keys"} (which params a node reads)
    uses: dict[str, dict[str, Any]] = field(default_factory=dict)

    def span(self, path: Path, *, key: bool = False) -> Span | None:
        """The span of a path's key (or value); for an absent path, its nearest parent's."""
        first, second = (self.key_spans, self.value_spans) if key else (self.value_spans, self.key_spans)
        for n in range(len(path), -1, -1):
            found = first.get(path[:n]) or second.get(path[:n])
            if found:
                return found
        return None

    def line(self, span: Span | None) -> str:
        if span is None or span.file != self.file or not 0 < span.line <= len(self.lines):
            return ""
        return self.lines[span.line - 1]

    def diagnostic(
        self, path: Path, message: str, hint: str = "", *, key: bool = False, span: Span | None = None
    ) -> Diagnostic:
        span = span or self.span(path, key=key)
        return Diagnostic(span, format_path(path), message, hint, self.line(span))


def _is_empty(node: Any) -> bool:
    return type(node).__name__ == "ScalarNode" and node.value == "" and not node.style


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_text(text: str, file: str) -> Document:
    """Parse YAML text into a Document; raise SpecError with a located message."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="safe", pure=True)
    lines = tuple(text.splitlines())
    try:
        root = yaml.compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        span = Span(file, mark.line + 1, mark.column + 1) if mark else None
        msg = f"invalid YAML: {exc.problem or exc.context}"
        line = lines[span.line - 1] if span and span.line <= len(lines) else ""
        raise SpecError([Diagnostic(span, "", msg, "", line)]) from None
    except YAMLError as exc:
        raise SpecError([Diagnostic(Span(file, 1, 1), "", f"invalid YAML: {exc}")]) from None
    builder = _Builder(file, yaml.constructor)
    try:
        data = None if root is None else builder.build(root, ())
    except _AliasBomb as bomb:
        line = lines[bomb.span.line - 1] if bomb.span.line <= len(lines) else ""
        raise SpecError([Diagnostic(bomb.span, "", "YAML aliases expand to too many nodes",
                                    "the file looks like an alias bomb; write the values out", line)]) from None
    doc = Document(file, data, lines, builder.key_spans, builder.value_spans)
    if builder.errors:
        raise SpecError([doc.diagnostic(p, m, h, span=s) for p, m, h, s in builder.errors])
    return doc


class _AliasBomb(Exception):
    def __init__(self, span: Span) -> None:
        self.span = span


class _Builder:
    def __init__(self, file: str, constructor: Any) -> None:
        self.file = file
        self.constructor = constructor
        self.key_spans: dict[Path, Span] = {}
        self.value_spans: dict[Path, Span] = {}
        self.errors: list[tuple[Path, str, str, Span | None]] = []
        self.seen: set[int] = set()
        self.active: set[int] = set()
        self.expanded = 0

    def span(self, node: Any) -> Span:
        return Span(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Any, path: Path) -> Any:
        nid = id(node)
        if nid in self.active:
            self.errors.append((path, "a recursive alias is not allowed", "", None))
            return None
        if nid in self.seen:
            self.expanded += 1
            if self.expanded > ALIAS_BUDGET:
                raise _AliasBomb(self.span(node))
        self.seen.add(nid)
        self.value_spans.setdefault(path, self.span(node))
        self.active.add(nid)
        try:
            return self._build(node, path)
        finally:
            self.active.discard(nid)

    def _build(self, node: Any, path: Path) -> Any:
        kind = type(node).__name__
        if kind == "MappingNode":
            return self.mapping(node, path)
        if kind == "SequenceNode":
            self.check_tag(node, f"{_STD}seq", path)
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self.scalar(node, path)

    def check_tag(self, node: Any, expected: str, path: Path) -> bool:
        if node.tag == expected:
            return True
        tag = str(node.tag).replace(_STD, "!!")
        self.errors.append((path, f"the YAML tag '{tag}' is not allowed",
                            "mlmake reads plain YAML only; remove the tag", self.span(node)))
        return False

    def scalar(self, node: Any, path: Path) -> Any:
        if node.tag == _TIMESTAMP:
            return str(node.value)
        if node.tag not in _SCALAR_TAGS:
            self.check_tag(node, f"{_STD}str", path)
            return None
        return self.construct(node, path)

    def construct(self, node: Any, path: Path) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except Exception:  # noqa: BLE001 - ruamel raises several types for a bad explicit tag
            tag = str(node.tag).replace(_STD, "!!")
            self.errors.append((path, f"'{node.value}' is not a valid {tag}", "remove the tag or fix the value",
                                self.span(node)))
            return None

    def mapping(self, node: Any, path: Path) -> dict[str, Any]:
        self.check_tag(node, f"{_STD}map", path)
        out: dict[str, Any] = {}
        merged: dict[str, Any] = {}  # explicit keys win over merged ones, whatever the order
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                self.merge(merged, value_node, path)
                continue
            key = self.key(key_node, path)
            if key is None:
                continue
            sub = path + (key,)
            if key in out:
                self.errors.append((sub, f"duplicate key '{key}'", "each key may appear once",
                                    self.span(key_node)))
            self.key_spans[sub] = self.span(key_node)
            if _is_empty(value_node):  # `key:` with nothing after: its value "starts" on the next line
                self.value_spans[sub] = self.span(key_node)
            out[key] = self.build(value_node, sub)
        for k, v in merged.items():
            out.setdefault(k, v)
        return out

    def key(self, node: Any, path: Path) -> str | None:
        if type(node).__name__ != "ScalarNode" or node.tag not in _SCALAR_TAGS:
            self.errors.append((path, "a mapping key must be a plain scalar", "", self.span(node)))
            return None
        value = self.construct(node, path)
        if value is None:
            return "null"
        return str(value).lower() if isinstance(value, bool) else str(value)

    def merge(self, out: dict[str, Any], node: Any, path: Path) -> None:
        sources = node.value if type(node).__name__ == "SequenceNode" else [node]
        for src in sources:
            value = self.build(src, path)
            if not isinstance(value, dict):
                self.errors.append((path, "'<<' must merge a mapping", "", self.span(src)))
                continue
            for k, v in value.items():
                out.setdefault(k, v)


# --- a JSON copy of the parse, keyed by the text's hash: parsing YAML is the slow part ---

_CACHE_VERSION = 1


def _text_key(text: str) -> str:
    import hashlib

    return f"{_CACHE_VERSION}:" + hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def load_text_cached(text: str, file: str, cache: FsPath | None) -> Document:
    """load_text, reusing the parse of identical text stored in `cache`."""
    if cache is None:
        return load_text(text, file)
    key = _text_key(text)
    hit = _read_cache(cache, key, file, text)
    if hit is not None:
        return hit
    doc = load_text(text, file)  # raises on errors: only good parses are cached
    body = {"key": key, "data": doc.data,
            "keys": [[list(p), s.line, s.col] for p, s in doc.key_spans.items()],
            "values": [[list(p), s.line, s.col] for p, s in doc.value_spans.items()]}
    _write_json(cache, body)
    return doc


def _read_cache(cache: FsPath, key: str, file: str, text: str) -> Document | None:
    import json

    try:
        with open(cache, encoding="utf-8") as f:
            body = json.load(f)
        if body.get("key") != key:
            return None
        keys = {tuple(p): Span(file, line, col) for p, line, col in body["keys"]}
        values = {tuple(p): Span(file, line, col) for p, line, col in body["values"]}
        return Document(file, body["data"], tuple(text.splitlines()), keys, values)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_json(path: FsPath, body: Any) -> None:
    import json

    from mlmake.workdir import write_cache

    write_cache(path, json.dumps(body))  # a cache that cannot be written only costs speed
