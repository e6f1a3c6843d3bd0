"""A python file's code by its meaning: the normal form of its syntax tree, so a comment, a
reformat or a docstring edit that cannot change what the code does leaves its hash alone.

What counts as the same meaning (exactly; README "What is a dependency" says it to users):
- the syntax tree, compared node by node: every name, operator, statement and constant value
  (with its type: `1`, `1.0` and `True` differ); positions (lines, columns) are not part of it,
  so comments, blank lines, indentation width, line breaks, parentheses that group nothing,
  quote style (`'a'` / `"a"`), `u"a"`, implicit concatenation (`"a" "b"` is `"ab"`) and the
  spelling of a number (`0x10`, `16`, `1_6`) are the same code;
- docstrings (the first statement of the module, a class or a function, when it is a string)
  are dropped, unless the file could read them: it names `__doc__`, `getdoc` or `help`, or
  imports `pydoc`, `doctest`, `click`, `typer`, `fire`, `argh` or `docopt` (which turn
  docstrings into behaviour);
- a file that reads source text (it names `getsource`, `getsourcelines`, `getcomments`,
  `findsource`, or imports `linecache` or `tokenize`) and a file that does not parse have no
  normal form: they are hashed by their bytes, like every file that is not python.

The tree is written with mlmake's own serializer (node type, then each field by name, empty
ones left out), not `ast.dump`, whose format changes between Python versions. It is the same
on every machine for one Python minor version; a newer Python whose syntax tree for a file is
shaped differently gives another hash, which reads as a code change (a rebuild, never a
missed one)."""

from __future__ import annotations

import ast
import re
import warnings

FORM_VERSION = 1  # bump when the normal form changes: every python file then reads as changed
_READS_DOCS = frozenset({"__doc__", "getdoc", "help", "pydoc", "doctest", "click", "typer", "fire", "argh",
                         "docopt"})
_READS_SOURCE = frozenset({"getsource", "getsourcelines", "getcomments", "findsource", "linecache", "tokenize"})
_SKIPPED = frozenset({"kind", "type_comment"})  # `u"x"` is "x"; type comments are not parsed
_WITH_DOCSTRING = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def normal_form(source: bytes) -> bytes | None:
    """The file's code as a canonical text of its syntax tree; None when it has none (it does
    not parse, or it reads source text): then its bytes are what counts."""
    try:
        with warnings.catch_warnings():  # an invalid escape is the script's business, not plan's
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    out = [f"mlmake-python-form {FORM_VERSION}\n"]
    docs: list[tuple[int, int]] = []  # where each docstring is in out
    try:
        _write(tree, out, docs)
    except RecursionError:  # nested past the interpreter's depth: hash the bytes instead
        return None
    names = _names("".join(out))
    if names & _READS_SOURCE:
        return None
    if not names & _READS_DOCS:
        for start, end in reversed(docs):
            del out[start:end]
    return "".join(out).encode("utf-8", "backslashreplace")


def _names(form: str) -> set[str]:
    """Every identifier, attribute, imported module part and short name-like string of the
    form (`getattr(f, "__doc__")` too)."""
    return {part for match in _NAME.findall(form) for part in match.split(".")}


_NAME = re.compile(r"str:'([A-Za-z_][A-Za-z0-9_.]{0,60})'")


def _write(node: object, out: list[str], docs: list[tuple[int, int]]) -> None:
    if isinstance(node, ast.AST):
        out.append(type(node).__name__ + "(")
        for name in node._fields:
            value = getattr(node, name, None)
            if name in _SKIPPED or value is None or (isinstance(value, list) and not value):
                continue
            out.append(name + "=")
            if name == "body" and isinstance(node, _WITH_DOCSTRING) and _is_docstring(value[0]):
                out.append("[")
                start = len(out)
                _write(value[0], out, docs)
                out.append(",")
                docs.append((start, len(out)))
                _write_items(value[1:], out, docs)
                out.append("]")
            else:
                _write(value, out, docs)
            out.append(",")
        out.append(")")
    elif isinstance(node, list):
        out.append("[")
        _write_items(node, out, docs)
        out.append("]")
    else:  # a constant, an identifier, a number: its type and repr tell `1`, `1.0` and `True` apart
        out.append(f"{type(node).__name__}:{node!r}")


def _write_items(items: list[object], out: list[str], docs: list[tuple[int, int]]) -> None:
    for item in items:
        _write(item, out, docs)
        out.append(",")


def _is_docstring(statement: object) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))
