"""Generate example data for a regression model: data/houses.csv.

    python scripts/generate.py --rows 2000 --seed 42 --out data

One row per house sold: its size, age, district and garden, and the price it
sold for (`price_k`, in thousands, the target). The same --rows and --seed
always give the same file.

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

DISTRICTS = np.array(["center", "inner", "outer"])
PRICE_PER_M2 = np.array([6.0, 4.2, 2.8])        # thousands per square metre, by district


def generate(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = rows
    district = rng.choice(len(DISTRICTS), size=n, p=[0.2, 0.35, 0.45])
    area = np.round(np.clip(rng.lognormal(np.log(90), 0.4, size=n), 25, 400), 1)
    rooms = np.clip(np.round(area / 28 + rng.normal(0, 0.7, size=n)), 1, 10).astype(np.int64)
    year_built = rng.integers(1900, 2024, size=n)
    garden = rng.random(n) < np.array([0.1, 0.35, 0.7])[district]

    # the price: size times the district's rate, less for old houses, more with a
    # garden and more rooms for the size, times noise
    age = 2024 - year_built
    price = (
        area * PRICE_PER_M2[district] * (1.0 - 0.0025 * age)
        + 25.0 * garden
        + 8.0 * (rooms - area / 28)
    ) * rng.lognormal(0, 0.12, size=n)

    return pl.DataFrame({
        "house_id": np.arange(1, n + 1, dtype=np.int64),
        "area_m2": area,
        "rooms": rooms,
        "year_built": year_built.astype(np.int64),
        "district": DISTRICTS[district],
        "garden": garden,
        "price_k": np.round(np.maximum(price, 10.0), 1),
    })


def main() -> None:
    ap = argparse.ArgumentParser(description="Generate data/houses.csv.")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, default=Path("data"), help="output folder")
    args = ap.parse_args()
    if args.rows < 1:
        ap.error("--rows must be at least 1")
    df = generate(args.rows, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "houses.csv"
    tmp = target.with_name(target.name + ".tmp")   # write, then rename: never half a file
    df.write_csv(tmp)
    os.replace(tmp, target)
    print(f"wrote {df.height} rows to {target}")


if __name__ == "__main__":
    main()
