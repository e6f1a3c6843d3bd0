"""`mlmake build --scheduler` on a Dask LocalCluster against `mlmake build -j 2` on this machine.

(a) per-node overhead  --nodes trivial `cmd` steps (each runs `python scripts/touch.py OUT`,
                       independent of the others), built from scratch:
                         -j 2       two local worker processes
                         cluster    `--scheduler` on a LocalCluster of 2 worker processes with a
                                    thread each (loopback), sharing nothing but the remote: each
                                    node's script is pushed once, fetched by the worker, and its
                                    output pushed and fetched back
                         shared-fs  the same cluster with --shared-fs (no transfers)
                       Each build starts from a fresh copy with a remote of its own, so nothing is
                       restored. The difference per node is what the cluster costs a node.

Runs alternate (A B C A B C ...); each contender shows the median and minimum wall time of --runs.
The cluster is started once, untimed (a real one is already running). Not measured here: the
`engine: dask` training (not built yet; see the README's limits).

Run: python benchmarks/dask.py [--nodes 200] [--runs 3]
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
TOUCH = "import sys\nfrom pathlib import Path\nPath(sys.argv[1]).write_text(sys.argv[1])\n"


def project(folder: Path, nodes: int) -> Path:
    (folder / "scripts").mkdir(parents=True)
    (folder / "scripts" / "touch.py").write_text(TOUCH)
    steps = "".join(f"  n{i}:\n    cmd: [python, scripts/touch.py, build/n{i}.txt]\n    outs: [build/n{i}.txt]\n"
                    for i in range(nodes))
    (folder / "mlproject.yaml").write_text(f"version: 1\nproject: many\nsteps:\n{steps}")
    (folder / "build").mkdir()
    return folder


def timed_build(template: Path, work: Path, name: str, args: list[str]) -> float:
    root = work / name
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(template, root)
    env = {**os.environ, "MLMAKE_REMOTE": str(work / f"{name}-remote")}
    shutil.rmtree(env["MLMAKE_REMOTE"], ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run([*MLMAKE, "-C", str(root), "build", *args], env=env, capture_output=True, text=True,
                          check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    # this file is named dask.py: its folder, first on sys.path, would shadow the dask package
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=None, local_directory=str(Path(tmp) / "workers")) as cluster:
        work = Path(tmp)
        template = project(work / "template", args.nodes)
        address = cluster.scheduler_address
        contenders = {"-j 2": ["-j", "2"], "cluster": ["--scheduler", address],
                      "shared-fs": ["--scheduler", address, "--shared-fs"]}
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.runs):
            for name, extra in contenders.items():
                times[name].append(timed_build(template, work, name.replace(" ", ""), extra))
        report(times, args.nodes, os.cpu_count() or 1)


def report(times: dict[str, list[float]], nodes: int, cores: int) -> None:
    base = statistics.median(times["-j 2"])
    print(f"{nodes} trivial cmd nodes, from scratch; {cores} cores; 2 local processes vs 2 Dask workers")
    print(f"{'':10} {'median s':>9} {'min s':>7} {'ms/node':>8} {'vs -j 2':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:10} {median:9.2f} {min(values):7.2f} {1000 * median / nodes:8.1f} {median / base:7.2f}x")


if __name__ == "__main__":
    main()
