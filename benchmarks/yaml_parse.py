"""Parsing mlproject.yaml: mlmake's loader (libyaml's events, ruamel's YAML 1.2 tags) against
ruamel's pure parser alone, on a small project file, a 10 MB value and a 3 MB file of short keys.

    python benchmarks/yaml_parse.py [--runs 3]

Prints the median seconds of each and their ratio; asserts nothing."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from mlmake.core import source

REPO = Path(__file__).resolve().parents[1]
TEXTS = {
    "examples/churn/mlproject.yaml": (REPO / "examples" / "churn" / "mlproject.yaml").read_text(encoding="utf-8"),
    "a 10 MB description": "version: 1\nproject: demo\ndescription: " + "x" * 10_000_000 + "\n",
    "3 MB of short keys": "version: 1\nproject: demo\nparams:\n" + "".join(
        f"  k{i}: {'x' * 60}\n" for i in range(40_000)),
}


def pure(text: str) -> None:
    from ruamel.yaml import YAML

    YAML(typ="safe", pure=True).compose(text)


def median(run: Callable[[str], object], text: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    print(f"{'text':<34}{'ruamel pure compose':>22}{'mlmake load_text':>20}{'ratio':>8}")
    for name, text in TEXTS.items():
        slow = median(pure, text, runs)
        fast = median(lambda t: source.load_text(t, "mlproject.yaml"), text, runs)
        print(f"{name:<34}{slow:>20.3f} s{fast:>18.3f} s{slow / fast:>7.1f}x")


if __name__ == "__main__":
    main()
