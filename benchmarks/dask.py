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
The cluster is started once, untimed (a real one is already running).

(b) big model          --rows rows of a binary label on 10 numeric inputs, in 8 parquet partitions,
                       one model trained --rounds rounds by `mlmake build -j 1` (the dataset node
                       built first, untimed, so only the model's node is timed):
                         single     the model as written (one xgboost process, nthread 2)
                         dask       the same model with `engine: dask` (a LocalCluster of 2
                                    in-process workers, a thread each, started for the node):
                                    the workers read the row groups of data.parquet, split,
                                    encode and train; the node reads the footer and gathers the
                                    held-out predictions
                         cluster    the dask model built with `--scheduler` on a LocalCluster of
                                    2 worker processes (a thread each, loopback, --shared-fs):
                                    the node runs on one worker, its training on both
                       Wall time of the build; the peak resident memory of the build's largest
                       process (ru_maxrss of its waited-for descendants: the node's process for
                       single and dask, where dask's in-process workers live too; the client for
                       cluster, which only plans and commits) and, for cluster, of each worker
                       process (a fresh cluster per run, so each peak is this build's).

Run: python benchmarks/dask.py [--nodes 200] [--runs 3] [--rows 5000000] [--rounds 20] [--only nodes|engine]
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
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--only", choices=["nodes", "engine"])
    args = parser.parse_args()
    # this file is named dask.py: its folder, first on sys.path, would shadow the dask package
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    if args.only != "engine":
        overhead(args.nodes, args.runs)
    if args.only != "nodes":
        engine(args.rows, args.rounds, args.runs)


def overhead(nodes: int, runs: int) -> None:
    from distributed import LocalCluster

    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=None, local_directory=str(Path(tmp) / "workers")) as cluster:
        work = Path(tmp)
        template = project(work / "template", nodes)
        address = cluster.scheduler_address
        contenders = {"-j 2": ["-j", "2"], "cluster": ["--scheduler", address],
                      "shared-fs": ["--scheduler", address, "--shared-fs"]}
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(runs):
            for name, extra in contenders.items():
                times[name].append(timed_build(template, work, name.replace(" ", ""), extra))
        report(times, nodes, os.cpu_count() or 1)


def report(times: dict[str, list[float]], nodes: int, cores: int) -> None:
    base = statistics.median(times["-j 2"])
    print(f"{nodes} trivial cmd nodes, from scratch; {cores} cores; 2 local processes vs 2 Dask workers")
    print(f"{'':10} {'median s':>9} {'min s':>7} {'ms/node':>8} {'vs -j 2':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:10} {median:9.2f} {min(values):7.2f} {1000 * median / nodes:8.1f} {median / base:7.2f}x")


BIG = """version: 1
project: big
datasets:
  events: {path: data/events, format: parquet}
models:
  big:
    features: events
    target: label
    task: binary
    params: {num_boost_round: ROUNDS, max_depth: 6, nthread: 2}
"""
DASK = "task: binary\n    engine: dask\n"
PARTS = 8
INPUTS = 10
# the build in a child that reports the peak RSS of its largest waited-for descendant (KiB on Linux)
MEASURED = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)")


def big_project(folder: Path, rows: int, rounds: int) -> Path:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    (folder / "data" / "events").mkdir(parents=True)
    per = -(-rows // PARTS)
    for part in range(PARTS):
        n = min(per, rows - part * per)
        x = rng.normal(size=(n, INPUTS)).astype(np.float32)
        label = (x[:, 0] + 0.5 * x[:, 1] - 0.25 * x[:, 2] + rng.normal(scale=0.5, size=n) > 0).astype(np.int8)
        frame = pl.DataFrame({f"x{i}": x[:, i] for i in range(INPUTS)}).with_columns(pl.Series("label", label))
        frame.write_parquet(folder / "data" / "events" / f"{part}.parquet")
    (folder / "mlproject.yaml").write_text(BIG.replace("ROUNDS", str(rounds)))
    return folder


def measured_build(root: Path, remote: Path, extra: list[str]) -> tuple[float, float, dict[str, float]]:
    """Wall seconds, peak MiB of the largest process, the model's held-out metrics."""
    env = {**os.environ, "MLMAKE_REMOTE": str(remote)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", MEASURED, *MLMAKE, "-C", str(root), "build", "-j", "1", *extra],
                          env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{root.name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    import json

    metrics = json.loads((root / "build" / "models" / "big" / "metrics.json").read_text())["metrics"]
    return seconds, int(done.stdout.splitlines()[-1]) / 1024, metrics


def peak_kib() -> int:
    """This process's peak resident memory (KiB on Linux): run on each worker."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def on_cluster(root: Path, remote: Path, work: Path) -> tuple[float, float, dict[str, float], list[float]]:
    """measured_build on a fresh LocalCluster of 2 worker processes, and each worker's peak MiB."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      local_directory=str(work / "workers")) as cluster, Client(cluster) as client:
        seconds, peak, metrics = measured_build(root, remote, ["--scheduler", cluster.scheduler_address,
                                                               "--shared-fs"])
        workers = sorted(v / 1024 for v in client.run(peak_kib).values())
    return seconds, peak, metrics, workers


def engine(rows: int, rounds: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        template = big_project(work / "template", rows, rounds)
        subprocess.run([*MLMAKE, "-C", str(template), "build", "datasets.events"], capture_output=True, check=True,
                       env={**os.environ, "MLMAKE_REMOTE": str(work / "remote-template")})
        results: dict[str, list[tuple[float, float, dict[str, float], list[float]]]] = {
            "single": [], "dask": [], "cluster": []}
        for run in range(runs):
            for name in results:
                root = work / f"{name}-{run}"
                shutil.copytree(template, root)
                if name != "single":
                    text = (root / "mlproject.yaml").read_text().replace("task: binary\n", DASK)
                    (root / "mlproject.yaml").write_text(text)
                remote = work / f"remote-{name}-{run}"
                results[name].append(on_cluster(root, remote, work) if name == "cluster"
                                     else (*measured_build(root, remote, []), []))
                shutil.rmtree(root)
        print(f"\none model, {rows} rows x {INPUTS} inputs in {PARTS} partitions, {rounds} rounds; "
              f"{os.cpu_count() or 1} cores; median of {runs}")
        print(f"{'':8} {'wall s':>8} {'min s':>7} {'peak MiB':>9} {'workers MiB':>12} {'auc':>7} {'logloss':>8}")
        for name, values in results.items():
            walls = [v[0] for v in values]
            workers = "/".join(f"{w:.0f}" for w in values[0][3]) or "-"
            print(f"{name:8} {statistics.median(walls):8.2f} {min(walls):7.2f} "
                  f"{statistics.median(v[1] for v in values):9.0f} {workers:>12} {values[0][2]['auc']:7.4f} "
                  f"{values[0][2]['logloss']:8.4f}")

if __name__ == "__main__":
    main()
