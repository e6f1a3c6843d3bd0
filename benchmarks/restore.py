"""Restoring from the DVC remote against rebuilding, and mlmake push/pull against plain DVC.

The project is examples/churn with `rows` set to --rows (1 000 000 customers: about three
million events, ~110 MB of CSV and the snapshots, features and model built from them). It is
built once in an origin repository, committed (lock, .mlmake-artifacts/ pointers, DVC config)
and shared on the machine's default remote (MLMAKE_REMOTE, a folder in the temp dir).

(a) restore   `mlmake build` in a fresh clone, each run a new clone:
                rebuild   the default remote is an empty folder: every node is built
                restore   the default remote is the origin's: every node is restored (its objects
                          copied from the remote's folder into the workspace and the clone's DVC
                          cache, hashed against the lock as they pass; DVC is not opened)
(b) push      the same pointers uploaded to an empty local folder remote, each run a new one:
                mlmake    `mlmake push` (also uploads the run-cache entries)
                dvc       `dvc push` of the same pointer files (.mlmake-artifacts/*.dvc)
(c) pull      a fresh clone whose remote holds everything, each run a new clone:
                mlmake    `mlmake pull` (also re-hashes every output against the lock)
                dvc       `dvc pull` of the same pointer files

Runs alternate (A B A B ...) after one untimed warm-up of each, so drift from other load hits
both alike; each contender shows its median and minimum wall time (every run listed) and its
median CPU time (user + sys of the command and its children, which other load disturbs far
less), and the ratios of all three. Targets: restore at least 20x faster than the rebuild; push and pull within 1.2x of
plain DVC. Nothing asserts: read the figures.

Run: python benchmarks/restore.py [--rows 1000000] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MLMAKE = [sys.executable, "-m", "mlmake"]
DVC = [sys.executable, "-m", "dvc"]
TARGET_RESTORE = 20.0
TARGET_TRANSFER = 1.2
SKIP = ("build", "data", ".mlmake", ".dvc", ".dvcignore", ".mlmake-artifacts", "mlproject.lock", "__pycache__")


def environment(base: Path) -> dict[str, str]:
    home = base / "home"
    home.mkdir(exist_ok=True)
    return {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(base / "xdg"), "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com", "DVC_NO_ANALYTICS": "1",
            "DVC_SITE_CACHE_DIR": str(home / "dvc-site"), "NO_COLOR": "1", "MLMAKE_NO_MEMO": "1"}


CPU: dict[str, list[float]] = {}  # contender → CPU seconds (user + sys) of its timed commands


def run(env: dict[str, str], cwd: Path, *argv: str, cpu: str = "") -> float:
    """Run a command to success; its wall time in seconds (its CPU time noted under cpu)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} in {cwd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    if cpu:
        CPU.setdefault(cpu, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return seconds


def origin(base: Path, env: dict[str, str], rows: int) -> tuple[Path, float]:
    """examples/churn at ROWS, built (its first build timed), committed; its default remote filled."""
    root = base / "origin"
    shutil.copytree(ROOT / "examples" / "churn", root, ignore=shutil.ignore_patterns(*SKIP))
    yaml = root / "mlproject.yaml"
    text, n = re.subn(r"(?m)^(  rows: )\d+", rf"\g<1>{rows}", yaml.read_text(encoding="utf-8"))
    assert n == 1, "examples/churn has no params.rows"
    yaml.write_text(text, encoding="utf-8")
    run(env, root, "git", "init", "-q")
    first = run(env, root, *MLMAKE, "build")
    run(env, root, "git", "add", "-A")
    run(env, root, "git", "commit", "-q", "-m", "churn, built")
    return root, first


def fresh_clone(env: dict[str, str], src: Path, dest: Path) -> Path:
    run(env, src.parent, "git", "clone", "-q", str(src), str(dest))
    return dest


def with_remote(env: dict[str, str], remote: Path) -> dict[str, str]:
    return {**env, "MLMAKE_REMOTE": str(remote)}


def alternate(runs: int, contenders: dict[str, Callable[[int], float]]) -> dict[str, list[float]]:
    """One untimed warm-up of each, then A B A B ...; the wall times of each."""
    for name, once in contenders.items():
        once(-1)
        print(f"  warm-up {name} done", flush=True)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for i in range(runs):
        for name, once in contenders.items():
            times[name].append(once(i))
    return times


def show(title: str, times: dict[str, list[float]], slow: str, fast: str, target: float, *, faster: bool) -> None:
    print(f"\n{title}")
    cpu = {name: CPU.pop(f"{title[:3]}{name}", [])[1:] for name in times}  # the warm-up left out
    for name, ts in times.items():
        listed = ", ".join(f"{t:.2f}" for t in ts)
        print(f"  {name:<10} median {statistics.median(ts):8.2f} s   min {min(ts):8.2f} s   "
              f"CPU {statistics.median(cpu[name] or [0]):8.2f} s   runs: {listed}")
    med = statistics.median(times[slow]) / statistics.median(times[fast])
    low = min(times[slow]) / min(times[fast])
    work = statistics.median(cpu[slow] or [0]) / max(statistics.median(cpu[fast] or [0]), 1e-9)
    if faster:
        verdict = "met" if med >= target else "MISSED"
        print(f"  {slow}/{fast}: {med:.1f}x (median), {low:.1f}x (min), {work:.1f}x (CPU); "
              f"target >= {target:.0f}x: {verdict}")
    else:
        verdict = "met" if med <= target else "MISSED"
        print(f"  {slow}/{fast}: {med:.2f}x (median), {low:.2f}x (min), {work:.2f}x (CPU); "
              f"target <= {target:.1f}x: {verdict}")


def restore_vs_rebuild(base: Path, env: dict[str, str], src: Path, shared: Path, runs: int) -> None:
    def rebuild(i: int) -> float:
        root = fresh_clone(env, src, base / f"rebuild{i}")
        empty = base / f"empty-remote{i}"
        seconds = run(with_remote(env, empty), root, *MLMAKE, "build", cpu="(a)rebuild")
        shutil.rmtree(root)
        shutil.rmtree(empty, ignore_errors=True)
        return seconds

    def restore(i: int) -> float:
        root = fresh_clone(env, src, base / f"restore{i}")
        seconds = run(with_remote(env, shared), root, *MLMAKE, "build", cpu="(a)restore")
        shutil.rmtree(root)
        return seconds

    times = alternate(runs, {"rebuild": rebuild, "restore": restore})
    show("(a) a fresh clone: `mlmake build` restoring from the default remote against rebuilding", times,
         "rebuild", "restore", TARGET_RESTORE, faster=True)


def push_vs_dvc(base: Path, env: dict[str, str], src: Path, runs: int) -> dict[str, Path]:
    """Pushes to empty local remotes; the last remote of each (full) for the pull benchmark."""
    pointers = sorted(str(p.relative_to(src)) for p in (src / ".mlmake-artifacts").glob("*.dvc"))
    last: dict[str, Path] = {}

    def push(tool: str) -> Callable[[int], float]:
        def once(i: int) -> float:
            remote = base / f"push-{tool}{i}"
            e = with_remote(env, remote)
            run(e, src, *MLMAKE, "validate")  # not timed
            if tool == "mlmake":
                seconds = run(e, src, *MLMAKE, "push", cpu="(b)mlmake")
            else:
                run(e, src, *DVC, "remote", "add", "--local", "-f", "-d", "mlmake", str(remote))  # not timed
                seconds = run(e, src, *DVC, "push", *pointers, cpu="(b)dvc")
            if tool in last:
                shutil.rmtree(last[tool], ignore_errors=True)
            last[tool] = remote
            return seconds
        return once

    times = alternate(runs, {"mlmake": push("mlmake"), "dvc": push("dvc")})
    show("(b) push to an empty local remote: `mlmake push` against `dvc push` of the same pointers", times,
         "mlmake", "dvc", TARGET_TRANSFER, faster=False)
    return last


def pull_vs_dvc(base: Path, env: dict[str, str], src: Path, remote: Path, runs: int) -> None:
    pointers = sorted(str(p.relative_to(src)) for p in (src / ".mlmake-artifacts").glob("*.dvc"))

    def pull(tool: str) -> Callable[[int], float]:
        def once(i: int) -> float:
            root = fresh_clone(env, src, base / f"pull-{tool}{i}")
            e = with_remote(env, remote)
            if tool == "mlmake":
                seconds = run(e, root, *MLMAKE, "pull", cpu="(c)mlmake")
            else:
                run(e, root, *DVC, "remote", "add", "--local", "-f", "-d", "mlmake", str(remote))  # not timed
                seconds = run(e, root, *DVC, "pull", *pointers, cpu="(c)dvc")
            shutil.rmtree(root)
            return seconds
        return once

    times = alternate(runs, {"mlmake": pull("mlmake"), "dvc": pull("dvc")})
    show("(c) pull into a fresh clone: `mlmake pull` against `dvc pull` of the same pointers", times,
         "mlmake", "dvc", TARGET_TRANSFER, faster=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it.")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="mlmake-restore-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        env = environment(base)
        shared = base / "shared-remote"
        print(f"examples/churn at rows={args.rows}, {args.runs} runs each, in {base}", flush=True)
        src, first = origin(base, with_remote(env, shared), args.rows)
        print(f"origin built in {first:.1f} s (its outputs shared on the default remote)", flush=True)
        restore_vs_rebuild(base, env, src, shared, args.runs)
        remotes = push_vs_dvc(base, env, src, args.runs)
        pull_vs_dvc(base, env, src, remotes["mlmake"], args.runs)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
