"""Generate example data for a binary model: data/users.csv.

    python scripts/generate.py --rows 2000 --seed 42 --out data

One row per user of a website: who they are, how they used the site, and
whether they bought a subscription (`converted`, the target). The same
--rows and --seed always give the same file.

Replace this script with your own data: either commit a CSV/Parquet file and
point the dataset's `path` at it (and delete steps.generate), or keep a step
like this one that fetches or prepares it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import polars as pl

COUNTRIES = np.array(["de", "fr", "uk", "us"])
DEVICES = np.array(["desktop", "mobile"])


def generate(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = rows
    age = rng.integers(16, 81, size=n)
    country = COUNTRIES[rng.choice(len(COUNTRIES), size=n, p=[0.3, 0.2, 0.2, 0.3])]
    mobile = rng.random(n) < 0.55
    sessions = rng.poisson(rng.gamma(2.0, 2.0, size=n))                  # visits, mean ~4
    minutes = np.round(sessions * rng.gamma(2.0, 3.0, size=n), 1)        # time on the site
    referred = rng.random(n) < 0.2

    # the outcome: a logistic function of engagement, referral and device, plus noise
    logit = (
        -2.8
        + 0.5 * np.minimum(sessions, 10)
        + 0.03 * minutes
        + 1.5 * referred
        - 1.0 * mobile
        + 0.02 * (age - 40)
        + rng.normal(0, 0.3, size=n)
    )
    converted = rng.random(n) < 1 / (1 + np.exp(-logit))

    return pl.DataFrame({
        "user_id": np.arange(1, n + 1, dtype=np.int64),
        "age": age.astype(np.int64),
        "country": country,
        "device": DEVICES[mobile.astype(np.int64)],
        "sessions": sessions.astype(np.int64),
        "minutes": minutes,
        "referred": referred,
        "converted": converted,
    })


def main() -> None:
    ap = argparse.ArgumentParser(description="Generate data/users.csv.")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, default=Path("data"), help="output folder")
    args = ap.parse_args()
    if args.rows < 1:
        ap.error("--rows must be at least 1")
    df = generate(args.rows, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "users.csv"
    tmp = target.with_name(target.name + ".tmp")   # write, then rename: never half a file
    df.write_csv(tmp)
    os.replace(tmp, target)
    print(f"wrote {df.height} rows to {target}")


if __name__ == "__main__":
    main()
