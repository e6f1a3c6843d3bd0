"""A request body's bytes → JSON values, refusing with a 400 whatever is not I-JSON
(RFC 7493, the interoperable subset of JSON): malformed syntax, bytes that are not UTF-8,
NaN and Infinity, strings holding unpaired surrogates ("\\ud800") and numbers beyond a
64-bit float (1e400). What passes can be logged, encoded and echoed back without error.

The last two are legal JSON text that Python decodes into values nothing downstream can
write (a lone surrogate cannot be encoded as UTF-8, inf is not JSON). Locating them takes a
walk over the values, done only when the text holds a surrogate escape or the parser met a
number it had to flag (hooks on the C parser: a third more parse time, where a regular
expression over the text cost as much as the parse)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from mlmake.ml.rows import MAX_PROBLEMS, Loc, Problem
from mlmake.serve.predictor import Rejected

_SURROGATE = re.compile("[\ud800-\udfff]")


def parse(body: bytes, content_type: str = "") -> Any:
    """The JSON value of a request body; Rejected(400) naming the problem and where it is."""
    flagged: list[str] = []

    def number(spelled: str) -> float:
        value = float(spelled)
        if value - value != 0:  # inf
            flagged.append(spelled)
        return value

    def integer(spelled: str) -> float:
        digits = len(spelled.lstrip("-"))
        if digits < 309:  # a float's largest value has 309 digits
            return int(spelled)
        flagged.append(spelled)
        return int(spelled) if digits == 309 else -math.inf if spelled[0] == "-" else math.inf

    try:  # UTF-8 only (RFC 8259): json.loads would also take UTF-16, which the log could not splice in
        text = body.decode("utf-8")
        data = json.loads(text, parse_constant=_no_constant, parse_float=number, parse_int=integer)
    except UnicodeDecodeError as exc:
        raise _malformed(exc.start, f"the body is not UTF-8 text (byte 0x{body[exc.start]:02x} at offset "
                                    f"{exc.start})", content_type) from None
    except json.JSONDecodeError as exc:
        raise _malformed(exc.pos, str(exc), content_type) from None
    except RecursionError:
        raise _malformed(0, "arrays and objects nested too deeply", content_type) from None
    except ValueError as exc:  # NaN, Infinity
        raise _malformed(0, str(exc), content_type) from None
    if flagged or "\\ud" in text or "\\uD" in text:
        problems = _not_interoperable(data)
        if problems:
            raise Rejected(400, problems[:MAX_PROBLEMS])
    return data


def _malformed(where: int, why: str, content_type: str) -> Rejected:
    return Rejected(400, [Problem(("body", where), "json_invalid", f"malformed JSON: {why}{_sent_as(content_type)}")])


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON; send null for a missing value")


def _sent_as(content_type: str) -> str:
    """A hint when the request was labelled as something else (curl -d labels JSON as a form)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if not kind or kind == "application/json" or kind.endswith("+json"):
        return ""
    return f" (sent as {kind}: the body must be JSON)"


def _not_interoperable(data: Any) -> list[Problem]:
    """Each unpaired surrogate and out-of-range number, located; iterative, so any depth
    the parser accepted is walked without recursion."""
    problems: list[Problem] = []
    stack: list[tuple[Loc, Any]] = [(("body",), data)]
    while stack and len(problems) < MAX_PROBLEMS:
        loc, value = stack.pop()
        kind = type(value)
        if kind is dict:
            for key, item in value.items():
                if _SURROGATE.search(key):
                    problems.append(_surrogate((*loc, _shown(key)), "the name"))
                stack.append(((*loc, _shown(key)), item))
        elif kind is list:
            stack.extend(((*loc, n), item) for n, item in enumerate(value))
        elif kind is str and _SURROGATE.search(value):
            problems.append(_surrogate(loc, "the string"))
        elif (kind is float and math.isinf(value)) or (kind is int and _beyond_float(value)):
            problems.append(Problem(loc, "number_too_large", f"{_field(loc)}the number is beyond the range of "
                                    "a 64-bit float (about ±1.8e308)"))
    return sorted(problems, key=lambda p: [str(part) for part in p.loc])


def _beyond_float(value: int) -> bool:
    try:
        float(value)
    except OverflowError:
        return True
    return False


def _surrogate(loc: Loc, what: str) -> Problem:
    return Problem(loc, "string_unicode", f"{_field(loc)}{what} holds an unpaired surrogate "
                   "(a \\ud800-\\udfff escape without its pair), which is not Unicode; send UTF-8 text")


def _field(loc: Loc) -> str:
    last = loc[-1] if len(loc) > 1 else None
    return f"'{_shown(last)}': " if isinstance(last, str) else ""


def _shown(text: str) -> str:
    """Text that can be written as UTF-8: an unpaired surrogate spelled as its escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
