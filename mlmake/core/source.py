"""Reads a YAML file once, safely, into plain data plus the Span of every key path.

We compose the node tree ourselves instead of constructing objects, so no tag can
build a Python object, aliases are expanded under a budget (no "billion laughs"),
and every key and value keeps its line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

from mlmake.core.errors import Diagnostic, Span, SpecError

Path = tuple[str | int, ...]

_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_STD}{t}" for t in ("str", "int", "float", "bool", "null")}
_TIMESTAMP = f"{_STD}timestamp"
_MERGE = f"{_STD}merge"
ALIAS_BUDGET = 10_000  # nodes an alias may expand to, in all
MAX_DEPTH = 64  # levels of nesting (a value inside a mapping inside a mapping…); documented in the README


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


def decode(raw: bytes, file: str) -> str:
    """The file's text; SpecError at the line and column of the first byte that is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        before = raw[start:exc.start].decode("utf-8", errors="replace")
        shown = raw[start:raw.find(b"\n", exc.start) if b"\n" in raw[exc.start:] else len(raw)]
        span = Span(file, line, len(before) + 1)
        raise SpecError([Diagnostic(span, "", f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
                                    "save the file as UTF-8",
                                    shown.decode("utf-8", errors="replace"))]) from None


def load_text(text: str, file: str) -> Document:
    """Parse YAML text into a Document; raise SpecError with a located message."""
    from ruamel.yaml import YAML
    from ruamel.yaml.composer import MaxDepthExceededError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="safe", pure=True)
    yaml.max_depth = MAX_DEPTH  # checked while composing: a deeper file never reaches a recursion limit
    lines = tuple(text.splitlines())
    try:
        root = _compose(text, yaml)
    except (MaxDepthExceededError, _TooDeep) as exc:
        mark = exc.problem_mark if isinstance(exc, MaxDepthExceededError) else exc.mark
        where = Span(file, mark.line + 1, mark.column + 1)
        text_line = lines[where.line - 1] if where.line <= len(lines) else ""
        raise SpecError([Diagnostic(where, "", f"the YAML nests deeper than {MAX_DEPTH} levels",
                                    "a project file needs far fewer; flatten it", text_line)]) from None
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


def _compose(text: str, yaml: Any) -> Any:
    """The node tree of the text's single document. libyaml (C) parses it when PyYAML has it: the
    pure parser takes about half a microsecond a character (5 s for a 10 MB value). Either way the
    tags are ruamel's YAML 1.2 ones; a text libyaml rejects is composed by ruamel, which reports it."""
    fast = _compose_with_libyaml(text, yaml)
    return yaml.compose(text) if fast is _SLOW else fast


_SLOW = object()


class _TooDeep(Exception):
    def __init__(self, mark: Any) -> None:
        self.mark = mark


def _compose_with_libyaml(text: str, yaml: Any) -> Any:
    try:
        import yaml as pyyaml  # type: ignore[import-untyped]

        loader = pyyaml.CSafeLoader
    except (ImportError, AttributeError):
        return _SLOW
    composer = _EventComposer(yaml.resolver)
    try:
        for event in pyyaml.parse(text, Loader=loader):
            if not composer.add(event, pyyaml):
                return _SLOW
    except pyyaml.YAMLError:
        return _SLOW
    return composer.root


class _EventComposer:
    """Nodes from parse events, without recursion, as ruamel's composer makes them."""

    def __init__(self, resolver: Any) -> None:
        self.resolve = resolver.resolve
        self.root: Any = None
        self.documents = 0
        self.open: list[Any] = []  # the collections being filled, outermost first
        self.keys: list[Any] = []  # per open mapping: its key waiting for a value, or _SLOW
        self.anchors: dict[str, Any] = {}

    def add(self, event: Any, pyyaml: Any) -> bool:
        """Take one event; False where ruamel should compose the text instead."""
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

        if isinstance(event, pyyaml.DocumentStartEvent):
            self.documents += 1
            return self.documents == 1
        if isinstance(event, (pyyaml.SequenceEndEvent, pyyaml.MappingEndEvent)):
            self.open.pop()
            self.keys.pop()
            return True
        if isinstance(event, pyyaml.AliasEvent):
            return event.anchor in self.anchors and self.place(self.anchors[event.anchor])
        kinds: dict[type, Any] = {pyyaml.ScalarEvent: ScalarNode, pyyaml.SequenceStartEvent: SequenceNode,
                 pyyaml.MappingStartEvent: MappingNode}
        kind = kinds.get(type(event))
        if kind is None:
            return True  # stream and document ends
        if len(self.open) >= MAX_DEPTH:
            raise _TooDeep(event.start_mark)
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolve(kind, event.value if kind is ScalarNode else None, event.implicit)
        node: Any
        if kind is ScalarNode:
            node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        else:
            node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
        if event.anchor is not None:
            self.anchors[event.anchor] = node
        self.place(node)
        if kind is not ScalarNode:
            self.open.append(node)
            self.keys.append(_SLOW)
        return True

    def place(self, node: Any) -> bool:
        if not self.open:
            self.root = node
        elif self.keys[-1] is not _SLOW:
            self.open[-1].value.append((self.keys[-1], node))
            self.keys[-1] = _SLOW
        elif type(self.open[-1]).__name__ == "MappingNode":
            self.keys[-1] = node
        else:
            self.open[-1].value.append(node)
        return True


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

    from mlmake.core.workdir import write_cache

    write_cache(path, json.dumps(body))  # a cache that cannot be written only costs speed
