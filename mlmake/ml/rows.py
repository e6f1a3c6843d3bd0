"""JSON rows to the model's matrix: each value checked against the signature and
coded exactly as design.design_matrix codes a table.

Why a second encoder: design_matrix runs a polars replace_strict per categorical
column, ~0.25 ms a call whatever the row count, more than the rest of a one-row
request. The rules are few and are design_matrix's: a category is its position in
the signature's list, a bool is 1/0, a number is its float64 value, null is missing
(NaN), all then rounded once to float32. tests/unit/test_kind_deploy.py holds the two
to bit-identical matrices, hypothesis-generated rows included."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import did_you_mean
from mlmake.ml.design import TEXT_TYPES, Input

if TYPE_CHECKING:
    import numpy as np

Loc = tuple[str | int, ...]
MAX_PROBLEMS = 50  # a bad 10 000-row batch gets a readable answer, not 70 000 lines
_MISSING = object()
_NUMBER, _INTEGER, _BOOL, _CATEGORY = range(4)
_WANTED = {_NUMBER: "a number", _INTEGER: "an integer", _BOOL: "true or false", _CATEGORY: "a string"}
_FAST: dict[int, set[type]] = {_NUMBER: {int, float, type(None)}, _INTEGER: {int, type(None)},
                                _BOOL: {bool, type(None)}, _CATEGORY: {str, type(None)}}
_UNKNOWN = -1.0  # no category code is negative
_CODE = {_NUMBER: "number_type", _INTEGER: "integer_type", _BOOL: "bool_type", _CATEGORY: "string_type"}


@dataclass(frozen=True, slots=True)
class Problem:
    """One rejected value: where (`loc`, as FastAPI writes it), a type code and a message."""

    loc: Loc
    type: str
    msg: str
    input: Any = None

    def as_json(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "type": self.type, "msg": self.msg, "input": self.input}


def value_kind(spec: Input) -> int:
    """How a JSON value for this input is checked and coded."""
    if spec.categories is not None or spec.type in TEXT_TYPES:
        return _CATEGORY
    if spec.type == "bool":
        return _BOOL
    if spec.type.startswith(("int", "uint")):
        return _INTEGER
    return _NUMBER


class RowEncoder:
    """Checks JSON rows against a model's inputs and encodes them; built once per model."""

    def __init__(self, inputs: list[Input], allowed: tuple[str, ...] = ()) -> None:
        self.inputs = inputs
        self.names = [i.name for i in inputs]
        self.allowed = set(self.names) | set(allowed)  # inputs plus pass-through columns (the key)
        self._plan = [(i.name, value_kind(i), {c: float(n) for n, c in enumerate(i.categories or ())})
                      for i in inputs]

    def encode(self, rows: list[Any], at: Loc) -> tuple[np.ndarray, list[Problem]]:
        """The float32 matrix of `rows` and the problems found (the matrix is unusable if any).

        `at` is where the rows sit in the request, e.g. `("body", "rows")`."""
        import numpy as np

        fast = self._columns(rows)
        if fast is not None:
            return fast, []
        values: list[list[float]] = []
        problems: list[Problem] = []
        for n, row in enumerate(rows):
            values.append(self._row(row, (*at, n), problems))
            if len(problems) >= MAX_PROBLEMS:
                break
        return _float32(np.array(values, dtype=np.float64)), problems

    def _columns(self, rows: list[Any]) -> np.ndarray | None:
        """A clean batch encoded column by column (a few C-level passes per column), or None
        when some value needs a closer look: then the row-by-row pass finds and words it."""
        import numpy as np

        if set(map(type, rows)) != {dict}:
            return None
        if set(map(len, rows)) != {len(self._plan)} and not all(map(self.allowed.issuperset, rows)):
            return None
        out = np.empty((len(rows), len(self._plan)), dtype=np.float64)
        try:
            for j, (name, kind, codes) in enumerate(self._plan):
                column = [row.get(name, _MISSING) for row in rows]
                if not _FAST[kind].issuperset(map(type, column)):
                    return None
                if kind == _CATEGORY:
                    column = [codes.get(v, _UNKNOWN) if v is not None else math.nan for v in column]
                    if _UNKNOWN in column:
                        return None
                out[:, j] = column  # None is NaN, True 1.0: design_matrix's casts
        except (OverflowError, TypeError, ValueError):
            return None
        return _float32(out)

    def encode_one(self, row: Any, at: Loc) -> tuple[np.ndarray, list[Problem]]:
        """One row (a JSON object) whose fields sit directly at `at`."""
        import numpy as np

        problems: list[Problem] = []
        values = self._row(row, at, problems)
        return _float32(np.array([values], dtype=np.float64)), problems

    def _row(self, row: Any, at: Loc, problems: list[Problem]) -> list[float]:
        try:
            return self._values(row, at, problems)
        except OverflowError:  # an integer beyond float range: JSON allows it, float() does not
            name = next((k for k, v in row.items() if type(v) is int and abs(v) > 2 ** 1023), "")
            problems.append(Problem((*at, name), "number_too_large", f"'{name}': the number is too large"))
            return [math.nan] * len(self.names)

    def _values(self, row: Any, at: Loc, problems: list[Problem]) -> list[float]:
        if type(row) is not dict:
            problems.append(Problem(at, "object_type", f"a row must be a JSON object, got {_json_type(row)}", row))
            return [math.nan] * len(self.names)
        out: list[float] = []
        for name, kind, codes in self._plan:
            value = row.get(name, _MISSING)
            kind_of = type(value)
            if kind == _NUMBER and (kind_of is float or kind_of is int):
                out.append(float(value))
            elif kind == _CATEGORY and kind_of is str and value in codes:
                out.append(codes[value])
            elif kind == _INTEGER and (kind_of is int or (kind_of is float and value.is_integer())):
                out.append(float(value))
            elif kind == _BOOL and kind_of is bool:
                out.append(1.0 if value else 0.0)
            elif value is None:
                out.append(math.nan)
            else:
                out.append(math.nan)
                problems.append(self._problem((*at, name), kind, value, codes))
        if len(row) != len(self._plan) or not self.allowed.issuperset(row):
            problems += self._extras(row, at)
        return out

    def _problem(self, loc: Loc, kind: int, value: Any, codes: dict[Any, float]) -> Problem:
        name = str(loc[-1])
        if value is _MISSING:
            return Problem(loc, "missing", f"'{name}' is missing; every input is required (send null for an "
                           "unknown value)")
        if kind == _CATEGORY and isinstance(value, str):
            hint = did_you_mean(value, codes)
            return Problem(loc, "unknown_category", f"'{name}': unknown category {value!r}; the model knows "
                           f"{', '.join(map(repr, codes))}" + (f" ({hint})" if hint else ""), value)
        return Problem(loc, _CODE[kind], f"'{name}': expected {_WANTED[kind]}, got {_json_type(value)}"
                       + _show(value), value)

    def _extras(self, row: dict[str, Any], at: Loc) -> list[Problem]:
        extra = sorted(set(row) - self.allowed)
        return [Problem((*at, name), "extra_forbidden", f"'{name}' is not an input of the model"
                        + (f" ({hint})" if (hint := did_you_mean(name, self.names)) else "")
                        + f"; the inputs are {', '.join(self.names)}", row[name]) for name in extra]

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of one row: what /metadata shows clients."""
        properties: dict[str, Any] = {name: {} for name in sorted(self.allowed - set(self.names))}
        for name, kind, codes in self._plan:
            bases: dict[int, dict[str, Any]] = {_NUMBER: {"type": "number"}, _INTEGER: {"type": "integer"},
                                                _BOOL: {"type": "boolean"}, _CATEGORY: {"enum": list(codes)}}
            properties[name] = {"anyOf": [bases[kind], {"type": "null"}]}
        return {"type": "object", "properties": properties, "required": list(self.names),
                "additionalProperties": False}


def _float32(values: np.ndarray) -> np.ndarray:
    """The one rounding to float32, as design_matrix does it (beyond its range: ±inf, quietly)."""
    import numpy as np

    with np.errstate(over="ignore"):
        return values.astype(np.float32)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)) or value is None:
        return ""
    text = ("true" if value else "false") if isinstance(value, bool) else repr(value)  # JSON's spelling
    return " " + (text if len(text) <= 40 else text[:37] + "...")
