"""A small SQL subset read into a tree, so that a feature set's query can be compiled for one
request row (ml/rowplan.py) instead of planned and run by polars on every request.

    SELECT expr [AS name], …  FROM table [AS alias]  [[LEFT | INNER] JOIN table [AS alias] ON …]
    [WHERE expr]  [GROUP BY expr, …]  [ORDER BY expr [ASC | DESC], …]

with expressions of columns, numbers, strings, NULL, TRUE, FALSE, + - * /, comparisons, AND,
OR, NOT, IS [NOT] NULL, CASE WHEN … THEN … [ELSE …] END, COALESCE, and COUNT, SUM, MIN, MAX,
AVG over a column (COUNT(*) too). Anything else raises Unsupported: the query then runs by
polars' SQL as before, which is what defines its meaning either way."""

from __future__ import annotations

import re
from dataclasses import dataclass

AGGREGATES = frozenset({"COUNT", "SUM", "MIN", "MAX", "AVG"})
COMPARISONS = frozenset({"=", "<>", "!=", "<", ">", "<=", ">="})
_CLAUSES = ("WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "OFFSET", "UNION", "JOIN", "LEFT", "INNER", "ON", "RIGHT",
            "FULL", "CROSS", "NATURAL", "OUTER", "SEMI", "ANTI", "WINDOW", "QUALIFY")
_TOKEN = re.compile(r"""\s+|--[^\n]*|/\*.*?\*/
    |(?P<num>\d+\.\d*(?![eE\w])|\.\d+(?![eE\w])|\d+(?![.eE\w]))
    |(?P<str>'(?:[^']|'')*')
    |(?P<qid>"(?:[^"]|"")+")
    |(?P<id>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<op><>|!=|<=|>=|[=<>+\-*/(),.;])""", re.S | re.X)


class Unsupported(Exception):
    """The query is outside the subset; the message says where."""


@dataclass(frozen=True, slots=True)
class Col:
    table: str | None
    name: str


@dataclass(frozen=True, slots=True)
class Lit:
    kind: str  # "int", "dec" (a number with a point: a decimal in polars), "str", "bool", "null"
    value: object


@dataclass(frozen=True, slots=True)
class Op:
    op: str  # + - * / and the comparisons, AND, OR; NOT and NEG with one argument; ISNULL, NOTNULL
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Case:
    whens: tuple[tuple[Expr, Expr], ...]
    default: Expr


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # COALESCE or one of AGGREGATES
    args: tuple[Expr, ...]  # an aggregate's one column, or () for COUNT(*)


Expr = Col | Lit | Op | Case | Call
NULL = Lit("null", None)


@dataclass(frozen=True, slots=True)
class Join:
    how: str  # "left" or "inner"
    table: str
    alias: str
    on: Expr


@dataclass(frozen=True, slots=True)
class Query:
    items: tuple[tuple[Expr, str | None], ...]  # (expression, its AS name)
    table: str
    alias: str
    joins: tuple[Join, ...]
    where: Expr | None
    group_by: tuple[Expr, ...]


def tokens(sql: str) -> list[tuple[str, str]]:
    """(kind, text) of each token: kind is num, str, id (upper-cased keyword or name), qid or op."""
    found, at = [], 0
    while at < len(sql):
        match = _TOKEN.match(sql, at)
        if match is None:
            raise Unsupported(f"cannot read {sql[at:at + 10]!r}")
        if match.lastgroup:
            found.append((match.lastgroup, match.group(match.lastgroup)))
        elif match.group().startswith("/*") and "/*" in match.group()[2:]:
            raise Unsupported("a block comment inside a block comment (polars nests them)")
        at = match.end()
    return found


def parse(sql: str) -> Query:
    return _Parser(tokens(sql)).query()


class _Parser:
    def __init__(self, toks: list[tuple[str, str]]) -> None:
        self.toks, self.at = toks, 0

    def peek(self, ahead: int = 0) -> tuple[str, str]:
        n = self.at + ahead
        return self.toks[n] if n < len(self.toks) else ("end", "")

    def word(self, *words: str) -> bool:
        """Take the next token when it is one of these keywords."""
        kind, text = self.peek()
        if kind == "id" and text.upper() in words:
            self.at += 1
            return True
        return False

    def op(self, *ops: str) -> bool:
        if self.peek()[0] == "op" and self.peek()[1] in ops:
            self.at += 1
            return True
        return False

    def expect(self, done: bool, what: str) -> None:
        if not done:
            raise Unsupported(f"expected {what} at {self.peek()[1] or 'the end'!r}")

    def name(self) -> str:
        kind, text = self.peek()
        if kind == "qid":
            self.at += 1
            return text[1:-1].replace('""', '"')
        if kind == "id" and text.upper() not in _CLAUSES + ("SELECT", "FROM", "AS", "BY", "AND", "OR", "NOT"):
            self.at += 1
            return text
        raise Unsupported(f"expected a name at {text or 'the end'!r}")

    def query(self) -> Query:
        self.expect(self.word("SELECT"), "SELECT")
        if self.word("DISTINCT"):
            raise Unsupported("SELECT DISTINCT")
        items = [self.item()]
        while self.op(","):
            items.append(self.item())
        self.expect(self.word("FROM"), "FROM")
        table, alias = self.table()
        joins = []
        while self.peek()[1].upper() in ("LEFT", "INNER", "JOIN"):
            joins.append(self.join())
        where = self.expr() if self.word("WHERE") else None
        group = self.exprs() if self.word("GROUP") and self.by() else []
        if self.word("ORDER") and self.by():
            self.order()
        self.op(";")
        self.expect(self.peek()[0] == "end", "the end of the query")
        return Query(tuple(items), table, alias, tuple(joins), where, tuple(group))

    def by(self) -> bool:
        self.expect(self.word("BY"), "BY")
        return True

    def item(self) -> tuple[Expr, str | None]:
        if self.peek()[1] == "*":
            raise Unsupported("SELECT *")
        expr = self.expr()
        return expr, self.name() if self.word("AS") else None

    def table(self) -> tuple[str, str]:
        table = self.name()
        if self.word("AS") or self.peek()[0] in ("id", "qid") and self.peek()[1].upper() not in _CLAUSES:
            return table, self.name()
        return table, table

    def join(self) -> Join:
        how = "inner" if self.word("INNER") else "left" if self.word("LEFT") else "inner"
        if how == "left":
            self.word("OUTER")
        self.expect(self.word("JOIN"), "JOIN")
        table, alias = self.table()
        self.expect(self.word("ON"), "ON")
        return Join(how, table, alias, self.expr())

    def exprs(self) -> list[Expr]:
        found = [self.expr()]
        while self.op(","):
            found.append(self.expr())
        return found

    def order(self) -> None:
        while True:
            self.expr()
            self.word("ASC", "DESC")
            if self.word("NULLS"):
                self.expect(self.word("FIRST", "LAST"), "FIRST or LAST")
            if not self.op(","):
                return

    def expr(self) -> Expr:
        left = self.conjunction()
        while self.word("OR"):
            left = Op("OR", (left, self.conjunction()))
        return left

    def conjunction(self) -> Expr:
        left = self.negation()
        while self.word("AND"):
            left = Op("AND", (left, self.negation()))
        return left

    def negation(self) -> Expr:
        return Op("NOT", (self.negation(),)) if self.word("NOT") else self.comparison()

    def comparison(self) -> Expr:
        left = self.sum()
        if self.word("IS"):
            negated = self.word("NOT")
            self.expect(self.word("NULL"), "NULL")
            return Op("NOTNULL" if negated else "ISNULL", (left,))
        kind, text = self.peek()
        if kind == "op" and text in COMPARISONS:
            self.at += 1
            return Op("<>" if text == "!=" else text, (left, self.sum()))
        if kind == "id" and text.upper() in ("IN", "BETWEEN", "LIKE", "ILIKE", "NOT"):
            raise Unsupported(text.upper())
        return left

    def sum(self) -> Expr:
        left = self.product()
        while self.peek()[0] == "op" and self.peek()[1] in "+-":
            self.at += 1
            left = Op(self.toks[self.at - 1][1], (left, self.product()))
        return left

    def product(self) -> Expr:
        left = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in "*/":
            self.at += 1
            left = Op(self.toks[self.at - 1][1], (left, self.unary()))
        return left

    def unary(self) -> Expr:
        if self.op("-"):
            arg = self.unary()
            if isinstance(arg, Lit) and arg.kind in ("int", "dec") and isinstance(arg.value, (int, float)):
                return Lit(arg.kind, -arg.value)
            return Op("NEG", (arg,))
        if self.op("+"):
            return self.unary()
        return self.primary()

    def primary(self) -> Expr:
        kind, text = self.peek()
        if kind == "num":
            self.at += 1
            if "." not in text and int(text) >= 2**63:
                raise Unsupported(f"the number {text} (past Int64)")
            return Lit("dec", _decimal(text)) if "." in text else Lit("int", int(text))
        if kind == "str":
            self.at += 1
            return Lit("str", text[1:-1].replace("''", "'"))
        if self.op("("):
            inner = self.expr()
            self.expect(self.op(")"), "')'")
            return inner
        if self.word("NULL"):
            return NULL
        if self.word("TRUE", "FALSE"):
            return Lit("bool", text.upper() == "TRUE")
        if self.word("CASE"):
            return self.case()
        if kind == "id" and self.peek(1) == ("op", "("):
            return self.call(text.upper())
        first = self.name()
        return Col(first, self.name()) if self.op(".") else Col(None, first)

    def case(self) -> Case:
        whens = []
        while self.word("WHEN"):
            cond = self.expr()
            self.expect(self.word("THEN"), "THEN")
            whens.append((cond, self.expr()))
        self.expect(bool(whens), "WHEN (CASE x WHEN … is not compiled)")
        default = self.expr() if self.word("ELSE") else NULL
        self.expect(self.word("END"), "END")
        return Case(tuple(whens), default)

    def call(self, name: str) -> Call:
        if name not in AGGREGATES and name != "COALESCE":
            raise Unsupported(f"function {name}")
        self.at += 2
        if name == "COUNT" and self.op("*"):
            args: list[Expr] = []
        else:
            if self.word("DISTINCT"):
                raise Unsupported(f"{name}(DISTINCT …)")
            args = self.exprs()
        self.expect(self.op(")"), "')'")
        if name == "COALESCE" and not args or name != "COALESCE" and (len(args) > 1 or args and
                                                                    not isinstance(args[0], Col)):
            raise Unsupported(f"{name} of {len(args)} arguments or of an expression")
        return Call(name, tuple(args))


def _decimal(text: str) -> float:
    """A literal with a point, as the float polars casts its decimal to: exact only while its
    digits fit a float's integer range and its scale a float's exact powers of ten."""
    whole, _, frac = text.partition(".")
    digits = (whole + frac).lstrip("0") or "0"
    if int(digits) >= 2**53 or len(frac) > 22:
        raise Unsupported(f"the number {text} (too many digits to be exact as a float)")
    return float(int(whole + frac or "0") / 10 ** len(frac))
