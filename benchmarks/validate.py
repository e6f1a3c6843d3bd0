"""Wall time of `mlmake validate` (a whole process) on each example and template.

Run: python benchmarks/validate.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def time_validate(project: Path, repeat: int) -> list[float]:
    cmd = [sys.executable, "-m", "mlmake", "-C", str(project), "validate"]
    subprocess.run(cmd, check=True, capture_output=True)  # warm the OS file cache
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    projects = sorted(p.parent for p in ROOT.glob("examples/*/mlproject.yaml"))
    projects += sorted(p.parent for p in ROOT.glob("templates/*/mlproject.yaml"))
    baseline = [sys.executable, "-c", "pass"]
    base = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        subprocess.run(baseline, check=True)
        base.append(time.perf_counter() - start)
    print(f"{'project':<24} {'median':>8} {'min':>8} {'max':>8}   (python -c pass: {statistics.median(base):.3f}s)")
    medians = []
    for project in projects:
        times = time_validate(project, args.repeat)
        medians.append(statistics.median(times))
        name = str(project.relative_to(ROOT))
        print(f"{name:<24} {statistics.median(times):>7.3f}s {min(times):>7.3f}s {max(times):>7.3f}s")
    worst = max(medians)
    print(f"worst median {worst:.3f}s; target 0.300s: {'OK' if worst <= 0.3 else 'OVER'}")


if __name__ == "__main__":
    main()
