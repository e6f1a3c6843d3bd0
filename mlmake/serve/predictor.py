"""A /predict or /feedback body → an answer, checked against the bundle's signature.
No web framework here: app.py turns `Rejected` into a 4xx response.

Accepted /predict bodies:

    {"island": "Dream", "bill_length_mm": 40.1, …}       one row (every input; null = unknown)
    {"rows": [{…}, {…}]}   or   [{…}, {…}]                a batch
    {"customer_id": 17}    or   {"key": 17}               one row from the online store (keyed models)
    {"rows": [{"customer_id": 17}, {…full row…}]}         a batch may mix both
    {"customer_id": 17, "age": 40, "plan": "pro", …}      a raw row: the columns of the feature set's
                                                          first table; its features are computed (raw.py)

A composite key is sent as {"a": 1, "b": "x"} or {"key": {"a": 1, "b": "x"}}."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlmake.ml.rows import Loc, Problem
from mlmake.ml.scoring import predict, prediction_arrays, prediction_record

if TYPE_CHECKING:
    import numpy as np

    from mlmake.serve.live import Bundle
    from mlmake.serve.store import OnlineStore

PREDICTION_ID = re.compile(r"^([0-9a-f]{16})-(\d{1,9})$")
_BODY: Loc = ("body",)


class Rejected(Exception):
    """A request the service answers with a 4xx and the problems found."""

    def __init__(self, status: int, problems: list[Problem]) -> None:
        super().__init__(problems[0].msg if problems else str(status))
        self.status = status
        self.problems = problems


@dataclass(frozen=True)
class Answer:
    payload: dict[str, Any]
    rows: int
    features: dict[int, dict[str, Any]]  # row → the stored features a key lookup used (for the log)


def answer(bundle: Bundle, data: Any, request_id: str) -> Answer:
    """Predictions for a parsed /predict body; Rejected (422, or 404 for an unknown key).

    One row gets {"prediction_id", "prediction", "probability" | "probabilities", "key"?,
    "model", "fingerprint"}; a batch gets arrays aligned with its rows: {"request_id",
    "model", "fingerprint", "classes"?, "prediction_ids", "predictions", "probabilities"?,
    "keys"?} (arrays, not an object per row: half the bytes to write and to parse)."""
    rows, at, single = _shape(data, bundle)
    x, keys, features = _matrix(bundle, rows, at, single)
    arrays = prediction_arrays(bundle.scorer, predict(bundle.scorer, x))
    head = {"model": bundle.model, "fingerprint": bundle.fingerprint}
    if single:
        one = {"prediction_id": f"{request_id}-0", **prediction_record(bundle.scorer, arrays, 0), **head}
        if keys:
            one["key"] = keys[0]
        return Answer(one, 1, features)
    out: dict[str, Any] = {"request_id": request_id, **head}
    if bundle.scorer.classes:
        out["classes"] = bundle.scorer.classes
    out["prediction_ids"] = [f"{request_id}-{n}" for n in range(len(x))]
    out.update(arrays)
    if keys:
        out["keys"] = [keys.get(n) for n in range(len(x))]
    return Answer(out, len(x), features)


def _shape(data: Any, bundle: Bundle) -> tuple[list[Any], Loc, bool]:
    """(rows, where they sit in the body, whether the body is a single row)."""
    if type(data) is list:
        rows, at = data, _BODY
    elif type(data) is dict and len(data) == 1 and "rows" in data and "rows" not in bundle.encoder.allowed:
        rows, at = data["rows"], ("body", "rows")
        if type(rows) is not list:
            raise Rejected(422, [Problem(at, "list_type", "'rows' must be an array of rows (JSON objects)")])
    elif type(data) is dict:
        return [data], _BODY, True
    else:
        raise Rejected(422, [Problem(_BODY, "body_type", "expected a JSON object (one row), or an array of rows "
                                     "or {\"rows\": [...]} (a batch)", data)])
    if not rows:
        raise Rejected(422, [Problem(at, "empty_batch", "the batch is empty; send at least one row")])
    return rows, at, False


def _matrix(bundle: Bundle, rows: list[Any], at: Loc,
            single: bool) -> tuple[np.ndarray, dict[int, dict[str, Any]], dict[int, dict[str, Any]]]:
    """The encoded inputs, the key of each row that has one, and the stored rows looked up."""
    store, encoder = bundle.store, bundle.encoder
    if store is None:
        _refuse_keys(bundle, rows, at, single)
    asks = {n: row for n, row in enumerate(rows) if _is_lookup(store, row, encoder.names)} \
        if store is not None and _shortest(rows) <= len(store.key) else {}
    raws = {n for n, row in enumerate(rows) if n not in asks and bundle.raw.is_raw(row)} if bundle.raw else set()
    if not asks and not raws:
        x, found = encoder.encode_one(rows[0], at) if single else encoder.encode(rows, at)
        if found:
            raise Rejected(422, found)
        return x, _echoed_keys(bundle, rows, at, single), {}
    import numpy as np

    x = np.empty((len(rows), len(encoder.names)), dtype=np.float32)
    problems: list[Problem] = []
    keys, features = _echoed_keys(bundle, rows, at, single), {}
    for n, row in enumerate(rows):
        loc = at if single else (*at, n)
        if n in raws:
            assert bundle.raw is not None
            computed = bundle.raw.feature_row(row, loc, problems)
            if computed is not None:
                x[n:n + 1], found = encoder.encode_one({k: computed[k] for k in encoder.names}, loc)
                problems += found
                features[n] = computed
                if bundle.scorer.key:
                    keys[n] = {k: row.get(k) for k in bundle.scorer.key}
            continue
        if n not in asks:
            x[n:n + 1], found = encoder.encode_one(row, loc)
            problems += found
            continue
        assert store is not None  # a lookup row is one only where there is a store
        position, key = _lookup(store, row, loc, problems)
        if position is not None:
            x[n] = store.matrix[position]
            keys[n], features[n] = key, store.features(position)
    if problems:
        raise Rejected(404 if all(p.type == "unknown_key" for p in problems) else 422, problems)
    return x, keys, features


def _refuse_keys(bundle: Bundle, rows: list[Any], at: Loc, single: bool) -> None:
    """A {"key": …} row for a model without a key gets that said, not "every input is missing"."""
    names = bundle.encoder.names
    if "key" in names or _shortest(rows) != 1:
        return
    msg = (f"'key': model {bundle.model} has no entity key (its feature set declares none), so no row can be "
           f"looked up; send the inputs: {', '.join(names)}")
    found = [Problem((*(at if single else (*at, n)), "key"), "no_key", msg, row["key"])
             for n, row in enumerate(rows) if type(row) is dict and set(row) == {"key"}]
    if found:
        raise Rejected(422, found)


def _shortest(rows: list[Any]) -> int:
    """The fewest fields of any row (0 when a row is not an object): a row with more
    fields than the key has cannot be a lookup, and most batches have none."""
    try:
        return min(map(len, rows))
    except TypeError:
        return 0


def _is_lookup(store: OnlineStore, row: Any, inputs: list[str]) -> bool:
    """A row that holds only a key: {"key": …} or exactly the key columns."""
    if type(row) is not dict or len(row) > len(store.key):
        return False
    return set(row) == set(store.key) or (set(row) == {"key"} and "key" not in inputs)


def _lookup(store: OnlineStore, row: dict[str, Any], at: Loc,
            problems: list[Problem]) -> tuple[int | None, dict[str, Any]]:
    """The store row of a key-only row, or None with the problem recorded."""
    given, locs, whole = _key_values(store, row, at, problems)
    if given is None:
        return None, {}
    bad = [Problem(loc, "key_type", f"'{store.key[i]}': {why}, got {v!r}", v)
           for i, (loc, v) in enumerate(zip(locs, given, strict=True)) if (why := store.wrong_type(i, v))]
    if bad:
        problems += bad
        return None, {}
    key = dict(zip(store.key, given, strict=True))
    position = store.find(given)
    if position is None:
        shown = ", ".join(f"{k} = {v!r}" for k, v in key.items())
        problems.append(Problem(whole, "unknown_key", f"no row with {shown} in the online store "
                                f"({len(store.index)} rows)", given[0] if len(given) == 1 else key))
        return None, {}
    return position, key


def _key_values(store: OnlineStore, row: dict[str, Any], at: Loc,
                problems: list[Problem]) -> tuple[tuple[Any, ...] | None, list[Loc], Loc]:
    """The key's values in key-column order, the location of each, and of the whole key;
    from the key columns or from {"key": …}."""
    if "key" not in row or "key" in store.key:
        locs: list[Loc] = [(*at, k) for k in store.key]
        return tuple(row[k] for k in store.key), locs, locs[0] if len(locs) == 1 else at
    value, where = row["key"], (*at, "key")
    if len(store.key) == 1:
        return (value,), [where], where
    if type(value) is not dict or set(value) != set(store.key):
        problems.append(Problem(where, "key_shape", f"a composite key is an object with {', '.join(store.key)}",
                                value))
        return None, [], where
    return tuple(value[k] for k in store.key), [(*where, k) for k in store.key], where


def _longest(rows: list[Any]) -> int:
    try:
        return max(map(len, rows))
    except TypeError:
        return 1 << 30


def _echoed_keys(bundle: Bundle, rows: list[Any], at: Loc, single: bool) -> dict[int, dict[str, Any]]:
    """The key columns a full row carried along, echoed back so a client can match answers;
    Rejected (422) for a key value of the wrong type (null is let through, as unknown)."""
    key = bundle.scorer.key
    if not key or _longest(rows) <= len(bundle.encoder.names):
        return {}  # no row has room for the inputs and the key
    echoed = {n: {k: row[k] for k in key} for n, row in enumerate(rows)
              if type(row) is dict and all(k in row for k in key)}
    store = bundle.store
    if store is not None:
        bad = [Problem((*(at if single else (*at, n)), k), "key_type", f"'{k}': {why}, got {_kind(v)}", v)
               for n, values in echoed.items() for i, (k, v) in enumerate(values.items())
               if v is not None and (why := store.wrong_type(i, v))]
        if bad:
            raise Rejected(422, bad)
    return echoed


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


# --- feedback ---------------------------------------------------------------------


def check_feedback(bundle: Bundle, data: Any) -> tuple[str, int, Any]:
    """(request id, row, label) of a /feedback body {"prediction_id": …, "label": …}."""
    if type(data) is not dict:
        raise Rejected(422, [Problem(_BODY, "body_type", 'expected {"prediction_id": "...", "label": ...}', data)])
    problems = [Problem(("body", f), "missing", f"'{f}' is missing") for f in ("prediction_id", "label")
                if f not in data]
    problems += [Problem(("body", f), "extra_forbidden", f"'{f}' is not a feedback field (prediction_id, label)")
                 for f in sorted(set(data) - {"prediction_id", "label"})]
    match = PREDICTION_ID.match(data["prediction_id"]) if type(data.get("prediction_id")) is str else None
    if "prediction_id" in data and match is None:
        problems.append(Problem(("body", "prediction_id"), "prediction_id", "not a prediction id this service "
                                "returned (like '3f2a9c0d1b4e5f60-0')", data["prediction_id"]))
    if "label" in data and (why := _bad_label(bundle, data["label"])):
        problems.append(Problem(("body", "label"), "label", why, data["label"]))
    if problems or match is None:
        raise Rejected(422, problems)
    return match.group(1), int(match.group(2)), data["label"]


def _bad_label(bundle: Bundle, label: Any) -> str:
    classes = bundle.scorer.classes
    if not classes:
        ok = type(label) in (int, float)
        return "" if ok else f"expected a number (the true value of {bundle.model}'s target), got {label!r}"
    if any(type(label) is type(c) and label == c for c in classes):
        return ""
    return f"expected one of the classes {', '.join(map(repr, classes))}, got {label!r}"
