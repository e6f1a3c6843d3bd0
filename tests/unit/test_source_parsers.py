"""libyaml's events and ruamel's pure parser give the same Document: data, tags and spans."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlmake.core import source
from tests.helpers import VALID

REPO = Path(__file__).resolve().parents[2]
TRICKY = """\
version: 1
project: "quoted \\u00e9"
base: &base {a: 1, b: [x, y]}
merged:
  <<: *base
  b: override
again: *base
typed: [!!str 12, !!int "7", !!float 1, 0o17, 0x1f, 1_000, .inf, -.inf, .nan, ~, null, yes, no, on, true, False]
when: 2024-01-02
stamp: 2024-01-02T03:04:05Z
block: |
  line one
    indented
folded: >-
  one
  two
single: 'it''s'
empty:
list:
  - a
  - {k: v}
  - - nested
"""
FILES = sorted((REPO / "examples").glob("*/mlproject.yaml")) + sorted((REPO / "templates").glob("*/mlproject.yaml"))


def both(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[source.Document, source.Document]:
    fast = source.load_text(text, "f")
    with monkeypatch.context() as m:
        m.setattr(source, "_compose_with_libyaml", lambda text, yaml: source._SLOW)
        slow = source.load_text(text, "f")
    return fast, slow


@pytest.mark.parametrize("text", [VALID, TRICKY] + [p.read_text(encoding="utf-8") for p in FILES],
                         ids=["valid", "tricky"] + [str(p.relative_to(REPO)) for p in FILES])
def test_the_two_parsers_agree(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = both(text, monkeypatch)
    assert repr(fast.data) == repr(slow.data)  # repr: nan != nan
    assert fast.key_spans == slow.key_spans
    assert fast.value_spans == slow.value_spans


def test_libyaml_is_used() -> None:
    import yaml

    assert yaml.CSafeLoader  # the wheels bundle libyaml; without it the pure parser reads everything
    assert source._compose_with_libyaml("a: 1\n", _ruamel()) is not source._SLOW


def _ruamel() -> object:
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True)
