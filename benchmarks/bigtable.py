"""A feature set over a big events table, computed whole against `partitions: 8` (issue 17).

Data (generated, seeded): --rows events (id, customer_id, kind, amount) in 8 parquet files, the
customers in random order, and --rows/10 customers. The feature set is a GROUP BY join, one row a
customer (the churn example's query):

    whole   the feature set as one table: its inputs read whole, the query run once
    parts   `partitions: 8`: each part reads only the rows of its customers from the same
            one-file events dataset (its file scanned and filtered eight times)
    cut     `partitions: 8` over an events dataset itself cut into 8 parts by customer_id:
            part i of the feature set reads part file i of the events and nothing else

The datasets are built first (their time and peak shown: a dataset still reads its source whole,
so its own peak is that of the whole table); each contender then builds its feature set alone
(`mlmake build features.NAME -j 1`, a remote of its own, so nothing is restored). Shown: the
build's wall time, the peak resident memory of its largest process (ru_maxrss of the build's
waited-for descendants), and whether its rows equal those of `whole` (sorted by the key, every
value to the last bit).

Run: python benchmarks/bigtable.py [--rows 4000000] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MLMAKE = [sys.executable, "-m", "mlmake"]
FILES = 8
PARTS = 8
# the build in a child that reports the peak RSS of its largest waited-for descendant (KiB on Linux)
MEASURED = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)")
SQL = """\
    sql: |
      SELECT c.customer_id, c.age, c.plan, COUNT(e.id) AS n_events,
             COALESCE(SUM(e.amount), 0.0) AS spend, COALESCE(MAX(e.amount), 0.0) AS top,
             COALESCE(SUM(CASE WHEN e.kind = 'support' THEN 1 ELSE 0 END), 0) AS n_support
      FROM customers AS c LEFT JOIN EVENTS AS e ON e.customer_id = c.customer_id
      GROUP BY c.customer_id, c.age, c.plan
"""
PROJECT = f"""\
version: 1
project: bigtable
datasets:
  customers:
    path: data/customers.parquet
  events:
    path: data/events
    format: parquet
  events_cut:
    path: data/events
    format: parquet
    partitions: {PARTS}
    partition_by: customer_id
features:
  whole:
    from: [customers, events]
    key: customer_id
{SQL.replace("EVENTS", "events")}  parts:
    from: [customers, events]
    key: customer_id
    partitions: {PARTS}
{SQL.replace("EVENTS", "events")}  cut:
    from: [customers, events_cut]
    key: customer_id
    partitions: {PARTS}
{SQL.replace("EVENTS", "events_cut")}"""
CONTENDERS = ("whole", "parts", "cut")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=4_000_000, help="events generated")
    parser.add_argument("--runs", type=int, default=1, help="builds of each contender (median shown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        template = generate(work / "template", args.rows)
        mlmake(template, work / "remote-template", "build", "datasets.customers")
        datasets = {name: timed(template, work / "remote-template", name) for name in ("events", "events_cut")}
        results = {name: [measured(template, work, name, run) for run in range(args.runs)] for name in CONTENDERS}
        reference = table(work / "whole-0" / "build" / "features" / "whole")
        print(f"\none feature set, {args.rows} events of {args.rows // 10} customers; {os.cpu_count() or 1} cores; "
              f"median of {args.runs}")
        for name, (seconds, peak) in datasets.items():
            print(f"  the dataset {name} ({'in 8 parts' if name == 'events_cut' else 'one file'}), built first: "
                  f"{seconds:.2f} s, {peak:.0f} MiB")
        print(f"{'':6} {'wall s':>8} {'peak MiB':>9}  same rows as whole")
        for name, values in results.items():
            same = table(work / f"{name}-0" / "build" / "features" / name).equals(reference)
            print(f"{name:6} {statistics.median(v[0] for v in values):8.2f} "
                  f"{statistics.median(v[1] for v in values):9.0f}  {'yes' if same else 'NO'}")


def generate(folder: Path, rows: int) -> Path:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    customers = max(rows // 10, 1)
    (folder / "data" / "events").mkdir(parents=True)
    pl.DataFrame({
        "customer_id": rng.permutation(customers).astype(np.int64) + 1,
        "age": rng.integers(18, 90, customers),
        "plan": rng.choice(["basic", "pro"], customers),
    }).write_parquet(folder / "data" / "customers.parquet")
    per = -(-rows // FILES)
    for index in range(FILES):
        n = min(per, rows - index * per)
        pl.DataFrame({
            "id": np.arange(index * per, index * per + n, dtype=np.int64),
            "customer_id": rng.integers(1, customers + 1, n),
            "kind": rng.choice(["login", "purchase", "support"], n),
            "amount": rng.exponential(40.0, n),
        }).write_parquet(folder / "data" / "events" / f"{index}.parquet")
    (folder / "mlproject.yaml").write_text(PROJECT)
    return folder


def mlmake(root: Path, remote: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLMAKE_REMOTE": str(remote)}
    done = subprocess.run([sys.executable, "-c", MEASURED, *MLMAKE, "-C", str(root), *args], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{root.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def measured(template: Path, work: Path, name: str, run: int) -> tuple[float, float]:
    """Wall seconds and peak MiB of building one contender's feature set."""
    root = work / f"{name}-{run}"
    shutil.copytree(template, root)
    return timed(root, work / f"remote-{name}-{run}", f"features.{name}")


def timed(root: Path, remote: Path, target: str) -> tuple[float, float]:
    """Wall seconds and peak MiB of building one node (its upstream built)."""
    if "." not in target:
        target = f"datasets.{target}"
    start = time.perf_counter()
    done = mlmake(root, remote, "build", "-j", "1", target)
    seconds = time.perf_counter() - start
    return seconds, int(done.stdout.splitlines()[-1]) / 1024


def table(folder: Path) -> object:
    import polars as pl

    from mlmake.ml.tables import table_files

    return pl.read_parquet(table_files(str(folder))).sort("customer_id")


if __name__ == "__main__":
    main()
