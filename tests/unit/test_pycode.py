"""pycode: what counts as the same meaning, exactly as the module and the README say."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlmake.state.hashing import CodeDigest, Hasher, hash_bytes
from mlmake.state.pycode import normal_form

BASE = b'"""Module doc."""\nimport os\n\n\ndef f(x):\n    """Doc."""\n    return x + 1\n'


@pytest.mark.parametrize("same", [
    b"import os\ndef f(x):\n    return x + 1\n",                                # no docstrings
    b'"""Other."""\nimport os  # why\n\ndef f( x ):\n  return (x+1)\n',           # comments, spacing, parens
    b"'''Module doc.'''\nimport os\ndef f(x):\n    'Doc.'\n    return x + 0x1\n",  # quotes, spelling of 1
    b"\xef\xbb\xbf" + BASE.replace(b"\n", b"\r\n"),                              # a BOM, CRLF line ends
])
def test_the_same_meaning_has_the_same_form(same: bytes) -> None:
    assert normal_form(same) == normal_form(BASE)


@pytest.mark.parametrize("other", [
    BASE.replace(b"x + 1", b"x + 1.0"),   # a constant of another type
    BASE.replace(b"x + 1", b"x + True"),
    BASE.replace(b"x + 1", b"1 + x"),     # operands swapped
    BASE.replace(b"import os", b"import sys"),
    BASE.replace(b"    return", b"    y = 0\n    return"),
])
def test_another_meaning_has_another_form(other: bytes) -> None:
    assert normal_form(other) != normal_form(BASE)


def test_a_file_that_reads_docstrings_keeps_them() -> None:
    reads = BASE + b"print(f.__doc__)\n"
    assert normal_form(reads) != normal_form(reads.replace(b"Doc.", b"Other."))
    clicked = b"import click\n" + BASE
    assert normal_form(clicked) != normal_form(clicked.replace(b"Doc.", b"Other."))


@pytest.mark.parametrize("source", [
    BASE + b"import inspect\nprint(inspect.getsource(f))\n",  # reads its own text: comments count
    BASE + b"import linecache\n",
    b"def f(:\n",                                             # does not parse: its bytes count
])
def test_a_file_that_reads_source_text_or_does_not_parse_has_no_form(source: bytes) -> None:
    assert normal_form(source) is None


def test_the_hasher_gives_python_its_meaning_and_its_bytes_and_other_files_their_bytes(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_bytes(BASE)
    (tmp_path / "b.py").write_bytes(b"def f(:\n")
    (tmp_path / "c.sh").write_bytes(b"echo hi\n")
    form = normal_form(BASE)
    assert form is not None
    hasher = Hasher(tmp_path, persist=False)
    assert hasher.code_digest("a.py") == CodeDigest("py:" + hash_bytes(form), hash_bytes(BASE))
    assert hasher.code_digest("b.py") == CodeDigest(hash_bytes(b"def f(:\n"))
    assert hasher.code_digest("c.sh") == CodeDigest(hash_bytes(b"echo hi\n"))
    assert hasher.code_digest("missing.py") == CodeDigest("")
