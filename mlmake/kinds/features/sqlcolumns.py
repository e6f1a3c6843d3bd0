"""Which column names a feature set's SQL can read, without a schema and without polars.

Every column a query reads is written in it as an identifier (polars SQL has no implicit
column except through `*`, `COLUMNS(...)` and `NATURAL` joins), so the identifiers of the
query, outside string literals and comments, are a superset of the columns it reads of each
of its tables: keywords, aliases and function names are harmless extras (a column that shares
a keyword's name counts as read). A query with `*`, `COLUMNS` or `NATURAL` reads whole tables."""

from __future__ import annotations

import re

from mlmake.core.columns import ColumnUse

_TOKENS = re.compile(r"""
    (?P<skip>'(?:[^']|'')*'|--[^\n]*|/\*.*?(?:\*/|\Z))   # string literals and comments
  | "(?P<quoted>(?:[^"]|"")*)"|`(?P<ticked>[^`]*)`        # quoted identifiers
  | (?P<word>[^\W\d]\w*)                                  # bare identifiers and keywords
  | (?P<number>\d[\w.]*)
  | (?P<other>\S)
""", re.VERBOSE | re.DOTALL)

_WHOLE = {"columns", "natural"}  # a regex selection of columns; a join on every shared column
_BEFORE_STAR = {"select", "distinct", "all", ",", "."}  # `*` after these selects every column


def read_names(sql: str) -> frozenset[str] | None:
    """The names (case-folded) the query may read; None when it may read every column."""
    names: set[str] = set()
    previous = ""
    for match in _TOKENS.finditer(sql):
        kind, text = match.lastgroup, match.group(match.lastgroup or 0)
        if kind == "skip":
            continue
        if kind == "other" and text == "*" and previous in _BEFORE_STAR:
            return None
        if kind in ("quoted", "ticked", "word"):
            name = text.replace('""', '"') if kind == "quoted" else text
            if kind == "word" and name.casefold() in _WHOLE:
                return None
            names.add(name.casefold())
        previous = text.casefold() if kind in ("word", "other") else "\0"
    return frozenset(names)


def sql_use(sql: str) -> ColumnUse | None:
    """What a query reads of each of its tables; None for whole tables."""
    names = read_names(sql)
    return None if names is None else ColumnUse(names=names)
