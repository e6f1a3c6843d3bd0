"""Python code hashed by its meaning (its normal syntax tree) against by its bytes, side by side.

Generates FILES python modules of about LINES lines each, then times, for each way of hashing:
- cold: a hasher with an empty cache (the first plan after a clone, or after editing every file);
- warm: the same hasher asked again (what every later plan costs: a stat per file, the hash
  remembered under its stat key in .mlmake/cache/hashes.json).
Nothing asserts; read the figures.

    python benchmarks/code_meaning.py [--files 200] [--lines 300] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlmake.state.hashing import Hasher  # noqa: E402

FUNCTION = '''

def step_{i}(rows, scale={i}):
    """Scale each row (function {i})."""
    total = 0
    for row in rows:  # a comment
        if row > {i}:
            total += row * scale
        else:
            total -= row / (scale + 1)
    return {{"total": total, "name": "step_{i}"}}
'''


def module(lines: int) -> str:
    body = ["import math", "import json"]
    i = 0
    while sum(text.count("\n") + 1 for text in body) < lines:
        body.append(FUNCTION.format(i=i))
        i += 1
    return "\n".join(body) + "\n"


def timed(runs: int, make: Callable[[], Callable[[], object]]) -> tuple[float, float]:
    """(median cold seconds, median warm seconds) over runs, each run a new hasher."""
    cold: list[float] = []
    warm: list[float] = []
    for _ in range(runs):
        work = make()
        start = time.perf_counter()
        work()
        cold.append(time.perf_counter() - start)
        start = time.perf_counter()
        work()
        warm.append(time.perf_counter() - start)
    return statistics.median(cold), statistics.median(warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        names = [f"m{i}.py" for i in range(args.files)]
        text = module(args.lines)
        for name in names:
            (root / name).write_text(text, encoding="utf-8")
        old = time.time() - 3600  # older than the racy window: hashes are remembered
        import os

        for name in names:
            os.utime(root / name, (old, old))

        def by_bytes() -> Callable[[], object]:
            hasher = Hasher(root, persist=False)
            return lambda: [hasher.source_digest(n) for n in names]

        def by_meaning() -> Callable[[], object]:
            hasher = Hasher(root, persist=False)
            return lambda: [hasher.code_digest(n) for n in names]

        size = sum((root / n).stat().st_size for n in names)
        print(f"{args.files} python files of {args.lines} lines ({size / 1e6:.1f} MB), median of {args.runs} runs")
        print(f"{'hashing':<12}{'cold ms':>10}{'warm ms':>10}{'cold ms/file':>14}")
        figures = {"bytes": timed(args.runs, by_bytes), "meaning": timed(args.runs, by_meaning)}
        for label, (cold, warm) in figures.items():
            print(f"{label:<12}{cold * 1e3:>10.1f}{warm * 1e3:>10.2f}{cold * 1e3 / args.files:>14.3f}")
        (bc, bw), (mc, mw) = figures["bytes"], figures["meaning"]
        print(f"meaning/bytes: cold {mc / bc:.1f}x, warm {mw / bw:.1f}x")


if __name__ == "__main__":
    main()
