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


def time_validate(project: Path, repeat: int, *, cold: bool) -> list[float]:
    """Whole-process wall times; cold: without mlmake's parse/validation cache in .mlmake/cache."""
    cmd = [sys.executable, "-m", "mlmake", "-C", str(project), "validate"]
    subprocess.run(cmd, check=True, capture_output=True)  # warm the OS file cache
    times = []
    for _ in range(repeat):
        if cold:
            for name in ("spec.json", "valid.json"):
                (project / ".mlmake" / "cache" / name).unlink(missing_ok=True)
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
    print(f"python -c pass: {statistics.median(base):.3f}s")
    print(f"{'project':<24} {'cold median':>12} {'warm median':>12} {'warm min':>9} {'warm max':>9}")
    medians = []
    for project in projects:
        cold = statistics.median(time_validate(project, args.repeat, cold=True))
        times = time_validate(project, args.repeat, cold=False)
        medians += [cold, statistics.median(times)]
        name = str(project.relative_to(ROOT))
        print(f"{name:<24} {cold:>11.3f}s {statistics.median(times):>11.3f}s {min(times):>8.3f}s "
              f"{max(times):>8.3f}s")
    print("cold: YAML parsed and checked against the schema; warm: the file is unchanged since the last run")
    worst = max(medians)
    print(f"worst median {worst:.3f}s; target 0.300s: {'OK' if worst <= 0.3 else 'OVER'}")


if __name__ == "__main__":
    main()
