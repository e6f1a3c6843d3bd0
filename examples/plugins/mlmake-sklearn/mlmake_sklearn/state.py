"""A fitted estimator as JSON and back, never a pickle.

An estimator is saved as its class name, its constructor parameters and its fitted
attributes (every attribute `fit` set: arrays with their dtype and shape, numbers,
strings, dtypes). Loading imports only classes named in estimators.CLASSES and sets
the attributes back, so the rebuilt estimator predicts the very same numbers: JSON
floats are written with repr, which round-trips float64 (and float32) exactly."""

from __future__ import annotations

import importlib
import math
import re
from typing import TYPE_CHECKING, Any

from mlmake.core.errors import NodeError
from mlmake_sklearn.estimators import CLASSES

if TYPE_CHECKING:
    import numpy as np

STATE_FORMAT = 1
ATTRIBUTE = re.compile(r"^_?[a-z][a-z0-9_]*$")  # what `fit` sets (coef_, _fit_dtype); never a dunder


def dump_estimator(estimator: Any) -> dict[str, Any]:
    """{"class", "params", "fitted"} of a fitted estimator of the supported set."""
    name = type(estimator).__name__
    if name not in CLASSES:
        raise NodeError(f"cannot save a {name}: only {', '.join(sorted(CLASSES))} are saved as JSON")
    params = estimator.get_params(deep=False)
    fitted = {k: _dump_value(k, v) for k, v in sorted(vars(estimator).items()) if k not in params}
    return {"class": name, "params": {k: _dump_value(k, v) for k, v in sorted(params.items())}, "fitted": fitted}


def load_estimator(data: dict[str, Any]) -> Any:
    """The estimator `dump_estimator` saved, with its fitted attributes set; NodeError for a
    class outside the supported set or a value that is not one this module writes."""
    name = str(data.get("class"))
    if name not in CLASSES:
        raise NodeError(f"a saved estimator names class {name!r}, which is not one of {', '.join(sorted(CLASSES))}")
    cls = getattr(importlib.import_module(CLASSES[name]), name)
    fitted = dict(data.get("fitted") or {})
    bad = [k for k in fitted if not ATTRIBUTE.match(str(k))]
    if bad:
        raise NodeError(f"a saved {name} sets {', '.join(map(repr, bad))}, which is not a fitted attribute")
    try:
        estimator = cls(**{str(k): _load_value(v) for k, v in (data.get("params") or {}).items()})
    except TypeError as exc:
        raise NodeError(f"a saved {name} has parameters it does not take: {exc}") from None
    for key, value in fitted.items():
        setattr(estimator, key, _load_value(value))
    return estimator


def _dump_value(key: str, value: Any) -> Any:
    import numpy as np

    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}  # SimpleImputer's missing_values is nan; JSON has no nan
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise NodeError(f"cannot save fitted attribute {key}: an array of {value.dtype}")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise NodeError(f"cannot save fitted attribute {key}: it holds nan or inf")
        return {"array": value.tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return {"scalar": value.item(), "dtype": value.dtype.str}
    if isinstance(value, np.dtype):
        return {"dtype_of": value.str}
    raise NodeError(f"cannot save fitted attribute {key}: a {type(value).__name__}")


def _load_value(value: Any) -> Any:
    import numpy as np

    if not isinstance(value, dict):
        return value
    if "array" in value:
        return _array(value["array"], value["dtype"], value["shape"])
    if "scalar" in value:
        return np.dtype(_dtype(value["dtype"])).type(value["scalar"])
    if value.get("float") in ("nan", "inf", "-inf"):
        return float(value["float"])
    if "dtype_of" in value:
        return np.dtype(_dtype(value["dtype_of"]))
    raise NodeError(f"not a saved value: {sorted(value)}")


def _array(values: Any, dtype: str, shape: list[int]) -> np.ndarray:
    import numpy as np

    return np.array(values, dtype=_dtype(dtype)).reshape(shape)


def _dtype(text: Any) -> str:
    """Only plain numeric dtypes (no object, no structured types) are read back."""
    import numpy as np

    kind = np.dtype(str(text)).kind if isinstance(text, str) and text[1:2] in "biuf" else ""
    if not kind or kind not in "biuf":
        raise NodeError(f"not a numeric dtype: {text!r}")
    return str(text)
