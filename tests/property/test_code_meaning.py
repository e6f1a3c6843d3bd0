"""A python hook's code fingerprint is its meaning: any random mix of semantics-preserving
rewrites (comment lines, trailing comments, blank lines, another indentation width, other
quotes, another docstring, `ast.unparse`'s formatting) never changes it, and any change of
one constant (a number or a string the code uses) always does, rewritten or not.

The hash is taken through the hasher's `code_digest`, what a node's `code` component records."""

from __future__ import annotations

import ast
import re
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mlmake.state.hashing import Hasher

HOOK = '''\
"""Feature hooks."""
import polars as pl

RATE = 3
LABELS = {'low': 10, 'high': 250}


def spend(customers, scale=2):
    """Spend, scaled."""
    total = pl.col('amount') * RATE * scale + 7
    if scale > 5:
        total = total - 1
    return customers.with_columns(total.alias('spend'))
'''
NUMBERS = [m.span() for m in re.finditer(r"\b\d+\b", HOOK)]
WORDS = [m.span() for m in re.finditer(r"'([a-z]+)'", HOOK)]


def meaning(source: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "hook.py").write_text(source, encoding="utf-8")
        return Hasher(Path(folder), persist=False).code_digest("hook.py").hash


@st.composite
def rewrites(draw: st.DrawFn, source: str) -> str:
    """The source with a random mix of rewrites that cannot change what it does."""
    if draw(st.booleans()):
        source = ast.unparse(ast.parse(source)) + "\n"  # another formatting: quotes, spacing, no comments
    lines = source.splitlines()
    if draw(st.booleans()):
        width = draw(st.sampled_from([1, 2, 3, 8]))
        lines = [" " * (width * ((len(x) - len(x.lstrip(" "))) // 4)) + x.lstrip(" ") for x in lines]
    if draw(st.booleans()):
        lines = [x.replace("'", '"') for x in lines]
    if draw(st.booleans()):
        lines = [x.replace('"""Spend, scaled."""', "'''Another docstring, # not a comment.'''") for x in lines]
    out: list[str] = []
    for line in lines:
        extra = draw(st.sampled_from(["", "", "blank", "comment", "trailing"]))
        indent = line[:len(line) - len(line.lstrip())]
        if extra == "blank":
            out.append("")
        elif extra == "comment":
            out.append(indent + "# " + draw(st.text(alphabet="abc xyz=()'\"#", max_size=12)))
        out.append(line + ("  # note" if extra == "trailing" and line.strip() else ""))
    return "\n".join(out) + "\n"


BASE = meaning(HOOK)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_semantics_preserving_rewrite_never_changes_the_fingerprint(data: st.DataObject) -> None:
    rewritten = data.draw(rewrites(HOOK))
    assert meaning(rewritten) == BASE, rewritten


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_a_changed_constant_always_changes_the_fingerprint(data: st.DataObject) -> None:
    if data.draw(st.booleans()):
        start, end = data.draw(st.sampled_from(NUMBERS))
        old = int(HOOK[start:end])
        new = str(data.draw(st.integers(min_value=0, max_value=10**6).filter(lambda n: n != old)))
    else:
        start, end = data.draw(st.sampled_from(WORDS))
        old_word = HOOK[start + 1:end - 1]
        word = data.draw(st.from_regex(r"[a-z]{1,8}", fullmatch=True).filter(lambda w: w != old_word))
        new = f"'{word}'"
    changed = HOOK[:start] + new + HOOK[end:]
    assert meaning(changed) != BASE, changed
    assert meaning(data.draw(rewrites(changed))) == meaning(changed)  # and a reformat of it is still it
