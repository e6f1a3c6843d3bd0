"""source.py: safe YAML → plain data, spans of every key and value, located errors."""

from __future__ import annotations

import os
import textwrap

import pytest

from mlmake.core.errors import Span, SpecError
from mlmake.core.source import ALIAS_BUDGET, format_path, load_text

F = "mlproject.yaml"


def rendered(text: str) -> str:
    with pytest.raises(SpecError) as info:
        load_text(textwrap.dedent(text), F)
    return info.value.render()


# --- plain data and spans ----------------------------------------------------------


def test_plain_data_keeps_yaml_types() -> None:
    doc = load_text("a: 1\nb: 0.5\nc: true\nd: null\ne: [x, 2]\nf: {g: h}\ns: '7'\n", F)
    assert doc.data == {"a": 1, "b": 0.5, "c": True, "d": None, "e": ["x", 2], "f": {"g": "h"}, "s": "7"}
    assert type(doc.data["f"]) is dict and type(doc.data["e"]) is list


def test_key_and_value_spans_are_one_based() -> None:
    doc = load_text("top:\n  inner: [a, bb]\n", F)
    assert doc.key_spans[("top",)] == Span(F, 1, 1)
    assert doc.key_spans[("top", "inner")] == Span(F, 2, 3)
    assert doc.value_spans[("top", "inner")] == Span(F, 2, 10)
    assert doc.value_spans[("top", "inner", 1)] == Span(F, 2, 14)


def test_span_of_an_absent_path_is_its_nearest_parent() -> None:
    doc = load_text("top:\n  inner: 1\n", F)
    assert doc.span(("top", "inner", "missing", 3)) == Span(F, 2, 10)
    assert doc.span(("top", "inner"), key=True) == Span(F, 2, 3)
    assert doc.span(("nowhere",)) == Span(F, 1, 1)  # the root mapping


def test_line_of_a_span_outside_the_file_is_empty() -> None:
    doc = load_text("a: 1\n", F)
    assert doc.line(Span(F, 1, 1)) == "a: 1"
    assert doc.line(Span(F, 2, 1)) == ""
    assert doc.line(Span("-P a=1", 0, 0)) == ""
    assert doc.line(None) == ""


def test_timestamps_stay_strings() -> None:
    assert load_text("d: 2024-01-31\n", F).data == {"d": "2024-01-31"}


def test_boolean_and_number_keys_become_strings() -> None:
    assert load_text("true: 1\n3: 2\n", F).data == {"true": 1, "3": 2}


def test_yes_and_no_are_strings_in_yaml_1_2() -> None:
    assert load_text("a: yes\nb: no\n", F).data == {"a": "yes", "b": "no"}


@pytest.mark.parametrize(
    ("path", "text"),
    [((), ""), (("models",), "models"), (("models", "churn", "metrics", 0), "models.churn.metrics[0]"),
     (("steps", "s", "cmd", 1, "x"), "steps.s.cmd[1].x")],
)
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text


def test_empty_text_is_none() -> None:
    assert load_text("", F).data is None
    assert load_text("# only a comment\n", F).data is None


# --- anchors, aliases and merges ---------------------------------------------------


def test_aliases_expand_to_copies_of_their_anchor() -> None:
    doc = load_text("base: &b {x: 1}\nother: *b\n", F)
    assert doc.data == {"base": {"x": 1}, "other": {"x": 1}}
    assert doc.data["base"] is not doc.data["other"]


def test_merge_keys_fill_in_missing_keys_only() -> None:
    doc = load_text("base: &b {x: 1, y: 2}\nother:\n  y: 3\n  <<: *b\n", F)
    assert doc.data["other"] == {"x": 1, "y": 3}


def test_explicit_key_after_a_merge_overrides_it() -> None:
    doc = load_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n", F)
    assert doc.data["other"] == {"x": 1, "y": 3}


def test_merge_of_a_list_of_mappings() -> None:
    doc = load_text("a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: [*a, *b]\n", F)
    assert doc.data["c"] == {"x": 1, "y": 2}


def test_merge_of_a_scalar_is_an_error() -> None:
    assert rendered("""\
        datasets:
          <<: 3
        """) == textwrap.dedent("""\
        mlproject.yaml:2:7: datasets: '<<' must merge a mapping
            <<: 3
                ^
        1 error found""")


BILLION_LAUGHS = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))


def test_alias_bomb_is_refused() -> None:
    # 9**9 strings if expanded; the budget stops it after ALIAS_BUDGET nodes
    with pytest.raises(SpecError) as info:
        load_text(BILLION_LAUGHS, F)
    [diag] = info.value.diagnostics
    assert (diag.span, diag.path, diag.message, diag.hint) == (
        Span(F, 1, 57), "", "YAML aliases expand to too many nodes",
        "the file looks like an alias bomb; write the values out")


def test_alias_bomb_shows_the_source_line() -> None:
    with pytest.raises(SpecError) as info:
        load_text(BILLION_LAUGHS, F)
    assert info.value.render() == "\n".join([
        "mlproject.yaml:1:57: YAML aliases expand to too many nodes",
        '  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        "  " + " " * 56 + "^",
        "  hint: the file looks like an alias bomb; write the values out",
        "1 error found",
    ])


def test_aliases_within_the_budget_are_fine() -> None:
    text = "a: &a [1, 2, 3]\n" + "".join(f"k{i}: *a\n" for i in range(100))
    assert load_text(text, F).data["k99"] == [1, 2, 3]
    assert ALIAS_BUDGET >= 1000


def test_recursive_alias_is_an_error() -> None:
    assert rendered("x: &x [*x]\n") == textwrap.dedent("""\
        mlproject.yaml:1:4: x[0]: a recursive alias is not allowed
          x: &x [*x]
             ^
        1 error found""")


# --- syntax and safety -------------------------------------------------------------


def test_invalid_yaml_syntax() -> None:
    assert rendered("""\
        version: 1
        datasets:
          a: {path: x.csv
          b: 1
        """) == textwrap.dedent("""\
        mlproject.yaml:4:4: invalid YAML: expected ',' or '}', but got ':'
            b: 1
             ^
        1 error found""")


def test_invalid_yaml_bad_indentation() -> None:
    assert rendered("""\
        datasets:
          a:
            path: x.csv
           format: csv
        """) == textwrap.dedent("""\
        mlproject.yaml:4:4: invalid YAML: expected <block end>, but found '<block mapping start>'
             format: csv
             ^
        1 error found""")


def test_invalid_yaml_at_the_end_of_the_file_has_no_snippet() -> None:
    assert rendered("version: 1\nproject: [demo\n") == textwrap.dedent("""\
        mlproject.yaml:3:1: invalid YAML: expected ',' or ']', but got '<stream end>'
        1 error found""")


def test_tag_that_builds_objects_is_refused_and_never_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object) -> None:
        raise AssertionError("os.system ran")

    monkeypatch.setattr(os, "system", boom)
    assert rendered("""\
        version: 1
        project: !!python/object/apply:os.system [echo hacked]
        """) == textwrap.dedent("""\
        mlproject.yaml:2:10: project: the YAML tag '!!python/object/apply:os.system' is not allowed
          project: !!python/object/apply:os.system [echo hacked]
                   ^
          hint: mlmake reads plain YAML only; remove the tag
        1 error found""")


@pytest.mark.parametrize(
    ("value", "tag"),
    [("!!python/name:os.system ''", "!!python/name:os.system"), ("!!binary aGVsbG8=", "!!binary"),
     ("!!set {x}", "!!set"), ("!!omap [a: 1]", "!!omap"), ("!custom {x: 1}", "!custom"),
     ("!!python/tuple [1, 2]", "!!python/tuple")],
)
def test_every_non_plain_tag_is_refused(value: str, tag: str) -> None:
    with pytest.raises(SpecError) as info:
        load_text(f"k: {value}\n", F)
    [diag] = info.value.diagnostics
    assert (diag.span, diag.path, diag.message) == (Span(F, 1, 4), "k", f"the YAML tag '{tag}' is not allowed")


def test_duplicate_key() -> None:
    assert rendered("""\
        version: 1
        project: demo
        project: other
        """) == textwrap.dedent("""\
        mlproject.yaml:3:1: project: duplicate key 'project'
          project: other
          ^
          hint: each key may appear once
        1 error found""")


def test_non_scalar_key() -> None:
    assert rendered("? [a]\n: 1\n") == textwrap.dedent("""\
        mlproject.yaml:1:3: a mapping key must be a plain scalar
          ? [a]
            ^
        1 error found""")


def test_every_structural_error_in_one_pass() -> None:
    assert rendered("""\
        a: 1
        a: 2
        b: !!set {x}
        b: 3
        """) == textwrap.dedent("""\
        mlproject.yaml:2:1: a: duplicate key 'a'
          a: 2
          ^
          hint: each key may appear once
        mlproject.yaml:3:4: b: the YAML tag '!!set' is not allowed
          b: !!set {x}
             ^
          hint: mlmake reads plain YAML only; remove the tag
        mlproject.yaml:4:1: b: duplicate key 'b'
          b: 3
          ^
          hint: each key may appear once
        3 errors found""")


@pytest.mark.parametrize("value", ["!!int abc", "!!float abc", "!!bool maybe", "!!int ''", "!!int 0x"])
def test_explicit_scalar_tag_with_a_bad_value_is_a_located_error(value: str) -> None:
    with pytest.raises(SpecError) as info:
        load_text(f"params:\n  a: {value}\n", F)
    [diag] = info.value.diagnostics
    assert (diag.span, diag.path) == (Span(F, 2, 6), "params.a")
