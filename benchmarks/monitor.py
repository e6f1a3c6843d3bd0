"""A monitor over a large prediction log: mlmake's reader (polars, lazily: mlmake/ml/predlog.py)
and the drift of every column (mlmake/ml/drift.py) against a baseline that reads the same log
line by line with json.loads, as a hand-written monitor would. Each contender runs in a fresh
process, so its peak memory (ru_maxrss) is its own. Nothing is asserted: read the figures.

    python benchmarks/monitor.py [--lines 1000000] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INPUTS = [{"name": "age", "type": "int"}, {"name": "plan", "type": "str", "categories": ["basic", "pro"]},
          {"name": "tenure_months", "type": "int"}, {"name": "monthly_fee", "type": "float"},
          {"name": "region", "type": "str", "categories": ["east", "north", "south", "west"]},
          {"name": "n_events", "type": "int"}, {"name": "total_spend", "type": "float"}]


def write_log(path: Path, lines: int) -> None:
    """`lines` single-row predictions through the service's own PredictionLog, a tenth of them fed back."""
    import numpy as np

    from mlmake.serve.log import PredictionLog

    rng = np.random.default_rng(0)
    log = PredictionLog(str(path), max_bytes=1 << 40)
    ages, tenure, fee = rng.integers(18, 90, lines), rng.integers(1, 120, lines), rng.uniform(5, 50, lines)
    events, spend, p = rng.poisson(3, lines), rng.uniform(0, 500, lines), rng.uniform(0, 1, lines)
    plans, regions = rng.choice(["basic", "pro"], lines), rng.choice(["east", "north", "south", "west"], lines)
    for i in range(lines):
        rid = f"{i:016x}"
        row = {"age": int(ages[i]), "plan": str(plans[i]), "tenure_months": int(tenure[i] + 24),
               "monthly_fee": round(float(fee[i]), 2), "region": str(regions[i]), "n_events": int(events[i]),
               "total_spend": round(float(spend[i]), 2)}
        answer = {"prediction_id": f"{rid}-0", "prediction": bool(p[i] > 0.5), "probability": float(p[i])}
        log.prediction(rid, 1, "churn", "fp", json.dumps(row).encode(), json.dumps(answer).encode(), {})
        if i % 10 == 0:
            log.feedback(rid, 0, bool(p[i] > 0.4), "churn", "fp")
    log.close()


def reference_table():  # type: ignore[no-untyped-def]
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(1)
    n = 10_000
    return pl.DataFrame({"age": rng.integers(18, 90, n), "plan": rng.choice(["basic", "pro"], n),
                         "tenure_months": rng.integers(1, 120, n), "monthly_fee": rng.uniform(5, 50, n),
                         "region": rng.choice(["east", "north", "south", "west"], n),
                         "n_events": rng.poisson(3, n), "total_spend": rng.uniform(0, 500, n)})


def mlmake_monitor(path: str) -> dict[str, object]:
    from mlmake.ml import drift, predlog

    reference = reference_table()
    data = predlog.read(path, INPUTS)
    columns = [drift.column_drift(c, reference[c].to_numpy(), data.rows[c].drop_nulls().to_numpy(),
                                  reference.schema[c].is_numeric()) for c in reference.columns]
    return {"rows": data.rows.height, "labels": int(data.rows["_label"].is_not_null().sum()),
            "drifted": [c.column for c in columns if c.drifted]}


def line_by_line(path: str) -> dict[str, object]:
    """What a monitor without a columnar reader does: json.loads per line, then the same statistics."""
    import numpy as np

    from mlmake.ml import drift

    reference = reference_table()
    values: dict[str, list[object]] = {c: [] for c in reference.columns}
    scores: dict[str, float] = {}
    labels: dict[str, object] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if record["type"] == "prediction":
                for column, value in record["request"].items():
                    if column in values:
                        values[column].append(value)
                scores[record["response"]["prediction_id"]] = record["response"]["probability"]
            else:
                labels[record["prediction_id"]] = record["label"]
    columns = [drift.column_drift(c, reference[c].to_numpy(), np.array(values[c]), reference.schema[c].is_numeric())
               for c in reference.columns]
    return {"rows": len(scores), "labels": len(labels), "drifted": [c.column for c in columns if c.drifted]}


def child(which: str, path: str) -> None:
    import resource

    start = time.perf_counter()
    import polars  # noqa: F401  (the libraries are loaded before the clock starts: a monitor's imports are
    import scipy.stats  # noqa: F401  a fixed cost, shown apart)

    from mlmake.ml import drift, predlog  # noqa: F401

    imports = time.perf_counter() - start
    start = time.perf_counter()
    result = (mlmake_monitor if which == "mlmake" else line_by_line)(path)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "imports": imports, "peak_mib": peak, **result}))


def run(which: str, path: Path) -> dict[str, object]:
    done = subprocess.run([sys.executable, __file__, "--child", which, str(path)], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000, help="prediction lines (plus a tenth as feedback)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the log here and keep it")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    folder = args.keep or Path(tempfile.mkdtemp(prefix="mlmake-monitor-bench-"))
    path = folder / "predictions.jsonl"
    if not path.is_file():
        start = time.perf_counter()
        write_log(path, args.lines)
        print(f"wrote {path}: {args.lines} predictions + {args.lines // 10} feedback lines, "
              f"{path.stat().st_size / 2**20:.0f} MiB in {time.perf_counter() - start:.0f}s")
    results: dict[str, list[dict[str, object]]] = {"mlmake": [], "line by line": []}
    for _ in range(args.runs):  # alternated, so that load on the machine hits both alike
        results["mlmake"].append(run("mlmake", path))
        results["line by line"].append(run("json", path))
    print(f"{'contender':<14} {'median s':>9} {'min s':>7} {'imports s':>9} {'peak MiB':>9}  rows, labels, drifted")
    for name, runs in results.items():
        times = [float(r["seconds"]) for r in runs]  # type: ignore[arg-type]
        peak = max(float(r["peak_mib"]) for r in runs)  # type: ignore[arg-type]
        last = runs[-1]
        imports = statistics.median(float(r["imports"]) for r in runs)  # type: ignore[arg-type]
        print(f"{name:<14} {statistics.median(times):>9.2f} {min(times):>7.2f} {imports:>9.2f} {peak:>9.0f}  "
              f"{last['rows']}, {last['labels']}, {last['drifted']}")
    ratio = statistics.median(float(r["seconds"]) for r in results["line by line"]) / \
        statistics.median(float(r["seconds"]) for r in results["mlmake"])  # type: ignore[arg-type]
    print(f"line by line / mlmake: {ratio:.1f}x")
    if not args.keep:
        path.unlink()
        os.rmdir(folder)


if __name__ == "__main__":
    main()
