"""Per-column drift between a reference and a current sample, with scipy's statistics.

The test that decides is chosen as Evidently's default does (by the column's type, its number
of distinct values and the reference's size):

| column                          | reference <= 1000 rows            | larger reference                      |
|---------------------------------|-----------------------------------|---------------------------------------|
| numeric, more than 5 values     | Kolmogorov–Smirnov, p < 0.05      | Wasserstein / std(reference) >= 0.1   |
| categorical, or <= 5 values     | chi-squared, p < 0.05             | Jensen–Shannon distance >= 0.1        |

(Evidently uses a proportions z-test for a binary column on a small reference; the chi-squared
test of the same 2×2 table is its two-sided equivalent.) The population stability index is
reported beside every column, never deciding: PSI = KL(cur‖ref) + KL(ref‖cur) over ten quantile
bins of the reference (numeric) or its categories, with scipy.special.rel_entr."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import spatial, special, stats

SMALL = 1000  # a reference up to this many rows is tested for significance; above, by distance
FEW_VALUES = 5  # a numeric column with at most this many distinct values is treated as categorical
P_VALUE = 0.05
DISTANCE = 0.1
BINS = 10
EPS = 1e-4  # the share given an empty bin, so PSI stays finite


@dataclass(frozen=True, slots=True)
class ColumnDrift:
    column: str
    kind: str  # numeric | categorical
    test: str  # ks | wasserstein | chi2 | jensenshannon
    value: float  # the p-value or the distance
    threshold: float
    drifted: bool
    psi: float

    def plain(self) -> dict[str, Any]:
        return asdict(self)


def ks(reference: np.ndarray, current: np.ndarray) -> float:
    """The two-sample Kolmogorov–Smirnov p-value."""
    return float(stats.ks_2samp(reference, current).pvalue)


def wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    """The Wasserstein distance in units of the reference's standard deviation."""
    scale = float(np.std(reference)) or 1.0
    return float(stats.wasserstein_distance(reference, current)) / scale


def chi2(reference: np.ndarray, current: np.ndarray) -> float:
    """The chi-squared p-value of the two samples' category counts (a 2×k contingency table)."""
    ref, cur = _counts(reference, current)
    if len(ref) < 2:
        return 1.0
    return float(stats.chi2_contingency(np.vstack([ref, cur])).pvalue)


def jensenshannon(reference: np.ndarray, current: np.ndarray) -> float:
    """The Jensen–Shannon distance (base 2, in [0, 1]) of the two samples' category shares."""
    ref, cur = _counts(reference, current)
    return float(spatial.distance.jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2))


def psi(reference: np.ndarray, current: np.ndarray, numeric: bool) -> float:
    """The population stability index over quantile bins of the reference, or its categories."""
    if numeric:
        edges = np.unique(np.quantile(reference, np.linspace(0, 1, BINS + 1)))
        edges[0], edges[-1] = -np.inf, np.inf
        ref = np.histogram(reference, edges)[0].astype(float)
        cur = np.histogram(current, edges)[0].astype(float)
    else:
        ref, cur = _counts(reference, current)
    p, q = _shares(ref), _shares(cur)
    return float(np.sum(special.rel_entr(q, p) + special.rel_entr(p, q)))


def column_drift(column: str, reference: np.ndarray, current: np.ndarray, numeric: bool) -> ColumnDrift:
    """The column's drift by the test Evidently's default picks for it."""
    categorical = not numeric or len(np.unique(reference)) <= FEW_VALUES
    small = len(reference) <= SMALL
    if categorical:
        test, value, threshold = ("chi2", chi2(reference, current), P_VALUE) if small else \
            ("jensenshannon", jensenshannon(reference, current), DISTANCE)
    else:
        test, value, threshold = ("ks", ks(reference, current), P_VALUE) if small else \
            ("wasserstein", wasserstein(reference, current), DISTANCE)
    drifted = value < threshold if test in ("ks", "chi2") else value >= threshold
    return ColumnDrift(column, "categorical" if categorical else "numeric", test, _round(value), threshold,
                       bool(drifted), _round(psi(reference, current, not categorical)))


def _counts(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both samples' counts over the categories either has."""
    ref_values, ref_counts = np.unique(reference.astype(str), return_counts=True)
    cur_values, cur_counts = np.unique(current.astype(str), return_counts=True)
    values = np.union1d(ref_values, cur_values)
    ref = np.zeros(len(values))
    cur = np.zeros(len(values))
    ref[np.searchsorted(values, ref_values)] = ref_counts
    cur[np.searchsorted(values, cur_values)] = cur_counts
    return ref, cur


def _shares(counts: np.ndarray) -> np.ndarray:
    shares = counts / max(counts.sum(), 1.0)
    return np.where(shares == 0, EPS, shares)


def _round(value: float) -> float:
    return round(value, 6)
