"""A no-op `mlmake plan` (a whole process) against `dvc status` on the same pipeline.

For each size N it writes a project of N cmd steps reading raw files, one shared script
and up to three earlier steps (a layered pipeline: fan-in 1-3, fan-out where several steps
read the same one), records a complete build in-process (what Builder records, without
running commands), and writes the equivalent DVC pipeline: dvc.yaml with the same stages,
deps, params and outs, dvc.lock with the same hashes, the outputs in the DVC cache. It
checks that both tools call the workspace up to date, then times each (one warm-up, then
the median of --runs). mlmake is timed twice: a repeated plan (answered from the last plan
the state model kept, with the stat keys of every path the hasher, the spec and lock readers
and the run-cache lookups read: see mlmake/memo.py) and a computed one (MLMAKE_NO_MEMO=1:
every file stat-ed, the spec, lock and caches read, every fingerprint made), which is what
the first plan after an edit costs. The ms/node and the 0.25 s / 1 s targets are read on the
computed plan; the 10x-faster-than-dvc target on the repeated one.

--breakdown also prints where the smallest size's computed plan spends its milliseconds:
the slowest imports (python -X importtime) and the top functions (cProfile, cumulative).

Run: python benchmarks/plan.py [--sizes 10,100,1000,10000] [--runs 5] [--dvc-timeout 300] [--breakdown]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WINDOW = 50  # a step reads steps from at most this far back: layers, not one long chain
SCRIPT = "import sys\nprint(sys.argv)\n"


def layout(n: int, seed: int = 0) -> tuple[list[str], list[list[str]]]:
    """Raw file names and, per step, its deps (raw files and earlier steps' outputs)."""
    rng = random.Random(seed)
    raws = [f"data/raw_{i}.csv" for i in range(max(2, n // 10))]
    deps: list[list[str]] = []
    for i in range(n):
        mine: set[str] = set()
        if i < max(1, n // 10) or rng.random() < 0.2:
            mine.add(rng.choice(raws))
        for _ in range(rng.randint(1, 3) if i else 0):
            j = rng.randint(max(0, i - WINDOW), i - 1)
            mine.add(f"build/s{j}.txt")
        deps.append(sorted(mine))
    return raws, deps


def cmd(i: int) -> list[str]:
    return ["python", "scripts/step.py", "--name", f"s{i}", "--seed", "${params.seed}"]


def write_project(root: Path, n: int) -> None:
    raws, deps = layout(n)
    for i, rel in enumerate(raws):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("id,value\n" + "".join(f"{k},{(k * 7919 + i) % 997}\n" for k in range(200)))
    (root / "scripts").mkdir(parents=True, exist_ok=True)
    (root / "scripts/step.py").write_text(SCRIPT)
    lines = ["version: 1", "project: bench", "params:", "  seed: 42", "steps:"]
    for i, d in enumerate(deps):
        lines += [f"  s{i}:", f"    cmd: {json.dumps(cmd(i))}", f"    deps: {json.dumps(['scripts/step.py', *d])}",
                  f"    outs: [build/s{i}.txt]"]
    (root / "mlproject.yaml").write_text("\n".join(lines) + "\n")
    (root / ".gitignore").write_text("/build/\n/.mlmake/\n")


def record_mlmake_build(root: Path) -> None:
    """Write every output and the lock exactly as Builder records a successful build."""
    from mlmake.core.graph import build_graph
    from mlmake.core.spec import load_project
    from mlmake.planning.plan import decide
    from mlmake.state.hashing import Hasher, hash_bytes
    from mlmake.state.lock import Entry, Lock, write_lock

    graph = build_graph(load_project(root))
    hasher = Hasher(root)
    lock = Lock({})
    for address, decl in graph.nodes.items():
        step = decide(decl, graph, lock, hasher)
        outputs = {}
        for out in decl.outputs:
            path = root / out
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{address} {hash_bytes(json.dumps(step.components, sort_keys=True).encode())}\n")
            digest = hasher.digest(out)
            outputs[out] = {"hash": digest.hash, "size": digest.size}
        lock.nodes[address] = Entry(step.fingerprint, decl.kind, step.components, outputs, {})
    write_lock(root, lock)
    hasher.save()


def _md5(path: Path) -> tuple[str, int]:
    data = path.read_bytes()
    return hashlib.md5(data).hexdigest(), len(data)


def write_dvc_pipeline(root: Path, n: int) -> None:
    """dvc.yaml, params.yaml and dvc.lock for the same stages; outputs put in the DVC cache."""
    _, deps = layout(n)
    subprocess.run([*dvc_cmd(), "init", "--no-scm", "-q"], cwd=root, check=True, env=bench_env())
    (root / "params.yaml").write_text("seed: 42\n")
    stages, locked = {}, {}
    cache = root / ".dvc/cache/files/md5"
    for i, d in enumerate(deps):
        name, out = f"s{i}", f"build/s{i}.txt"
        command = " ".join(cmd(i)).replace("${params.seed}", "42")
        stages[name] = {"cmd": command, "deps": ["scripts/step.py", *d], "params": ["seed"], "outs": [out]}
        entry_deps = []
        for dep in sorted(["scripts/step.py", *d]):
            md5, size = _md5(root / dep)
            entry_deps.append({"path": dep, "hash": "md5", "md5": md5, "size": size})
        md5, size = _md5(root / out)
        target = cache / md5[:2] / md5[2:]
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            os.link(root / out, target)
        locked[name] = {"cmd": command, "deps": entry_deps, "params": {"params.yaml": {"seed": 42}},
                        "outs": [{"path": out, "hash": "md5", "md5": md5, "size": size}]}
    # JSON is YAML: the fastest correct way to write 10 000 stages
    (root / "dvc.yaml").write_text(json.dumps({"stages": stages}, indent=1))
    (root / "dvc.lock").write_text(json.dumps({"schema": "2.0", "stages": locked}, indent=1))


def check_dvc_lock(root: Path) -> None:
    """The hand-written dvc.lock must be the one `dvc commit -f` writes for the same workspace."""
    from ruamel.yaml import YAML

    copy = root.with_name(root.name + "-dvc-commit")
    shutil.copytree(root, copy)
    (copy / "dvc.lock").unlink()
    shutil.rmtree(copy / ".dvc" / "cache")
    subprocess.run([*dvc_cmd(), "commit", "-f", "-q"], cwd=copy, check=True, env=bench_env())
    ours = json.loads((root / "dvc.lock").read_text())
    theirs = YAML(typ="safe").load((copy / "dvc.lock").read_text())
    assert ours == theirs, "the generated dvc.lock differs from what `dvc commit -f` records"
    shutil.rmtree(copy)


def mlmake_cmd(root: Path) -> list[str]:
    script = Path(sys.executable).parent / "mlmake"
    head = [str(script)] if script.exists() else [sys.executable, "-m", "mlmake"]
    return [*head, "-C", str(root), "plan", "--detailed-exitcode"]


def dvc_cmd() -> list[str]:
    script = Path(sys.executable).parent / "dvc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "dvc"]


def bench_env() -> dict[str, str]:
    """Both tools as installed: bytecode cached (outside the repository), no analytics."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "mlmake-bench-pycache")
    return {**env, "DVC_NO_ANALYTICS": "1"}


def timed(argv: list[str], cwd: Path, timeout: float, extra: dict[str, str] | None = None) \
        -> tuple[float | None, subprocess.CompletedProcess[str] | None]:
    start = time.perf_counter()
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env={**bench_env(), **(extra or {})})
    except subprocess.TimeoutExpired:
        return None, None
    return time.perf_counter() - start, done


def median_of(argv: list[str], cwd: Path, runs: int, timeout: float, extra: dict[str, str] | None = None) \
        -> float | None:
    times = []
    for _ in range(runs):
        seconds, _ = timed(argv, cwd, timeout, extra)
        if seconds is None:
            return None
        times.append(seconds)
    return statistics.median(times)


COMPUTE = {"MLMAKE_NO_MEMO": "1"}  # every plan computed from the files: what a plan after an edit costs


def bench(n: int, runs: int, dvc_timeout: float, workdir: Path) -> dict[str, float | None]:
    root = workdir / f"n{n}"
    root.mkdir()
    t0 = time.perf_counter()
    write_project(root, n)
    record_mlmake_build(root)
    write_dvc_pipeline(root, n)
    setup = time.perf_counter() - t0
    if n <= 100:
        check_dvc_lock(root)
    # a plan is kept only when the files it read are older than 2 s ("racily clean" ones may
    # change again unseen): a project is edited, then planned, not both in the same two seconds
    time.sleep(2.1)

    seconds, done = timed(mlmake_cmd(root), root, 600)  # warm-up and the correctness check
    assert done is not None and done.returncode == 0, f"mlmake plan is not a no-op at {n}:\n{done}"
    assert done.stdout.endswith(f"Plan: 0 to build, {n} up to date.\n"), done.stdout[-500:]
    kept = list((root / ".mlmake" / "cache" / "plan").glob("*.json"))
    assert kept, "the warm-up plan was not kept to answer the next one"
    repeat_s = median_of(mlmake_cmd(root), root, runs, 600)
    computed_s = median_of(mlmake_cmd(root), root, runs, 600, COMPUTE)

    dvc_status = [*dvc_cmd(), "status"]
    warm, done = timed(dvc_status, root, dvc_timeout)  # dvc builds its hash state on the first run
    dvc_s = None
    if done is not None:
        up_to_date = done.returncode == 0 and "Data and pipelines are up to date." in done.stdout
        assert up_to_date, f"dvc status is not up to date at {n}:\n{done.stdout[:2000]}{done.stderr}"
        # at most about a minute of timed dvc runs per size, and at least one
        dvc_s = median_of(dvc_status, root, max(1, min(runs, int(60 / (warm or 1)))), dvc_timeout)
    first_dvc = f"> {dvc_timeout:.0f} s" if warm is None else f"{warm:.2f}s"
    print(f"  n={n}: setup {setup:.1f}s, first plan {seconds:.3f}s, first dvc status {first_dvc}",
          file=sys.stderr, flush=True)
    return {"repeat": repeat_s, "computed": computed_s, "dvc": dvc_s}


def breakdown(root: Path) -> None:
    """The slowest imports and the costliest functions of one computed plan, on stderr."""
    argv = [sys.executable, "-X", "importtime", "-m", "mlmake", "-C", str(root), "plan", "--detailed-exitcode"]
    env = {**bench_env(), **COMPUTE}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            rows.append((int(parts[1]), int(parts[0]), parts[2].rstrip()))
    total = sum(own for _, own, _ in rows)
    print(f"\nimports of a computed {root.name} plan: {total / 1000:.1f} ms in all (self times summed); "
          "the slowest, cumulative µs | self µs | module:", file=sys.stderr)
    for cumulative, own, name in sorted(rows, reverse=True)[:15]:
        print(f"  {cumulative:>8} | {own:>7} | {name}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        stats = os.path.join(tmp, "plan.prof")
        # in-process through mlmake.__main__.run: the console script ends with os._exit, before
        # `python -m cProfile` could write its figures
        script = ("import cProfile; from mlmake.__main__ import run; "
                  f'cProfile.run("run({["-C", str(root), "plan"]!r})", {stats!r})')
        subprocess.run([sys.executable, "-c", script], capture_output=True, env=env, check=True)
        import pstats

        print(f"\ncProfile of a computed {root.name} plan (cumulative, top 25):", file=sys.stderr)
        pstats.Stats(stats, stream=sys.stderr).sort_stats("cumulative").print_stats(25)


def table(results: dict[int, dict[str, float | None]], runs: int, dvc_timeout: float, base: float) -> None:
    print(f"no-op plan, median of {runs} warm runs (python -c pass: {base:.3f}s)")
    print("  repeated: `mlmake plan` as run again and again, answered from the last plan the state model kept")
    print("  computed: the same with MLMAKE_NO_MEMO=1, every file looked at: what a plan after an edit costs")
    print(f"{'nodes':>6} | {'repeated':>9} | {'computed':>9} | {'dvc status':>10} | {'dvc/repeated':>12} |"
          f" {'dvc/computed':>12} | {'ms/node':>8} | {'target':>6}")
    targets = {10: 0.25, 1000: 1.0}
    for n, r in results.items():
        rep, com, d = r["repeat"], r["computed"], r["dvc"]
        assert rep is not None and com is not None
        dvc = f"> {dvc_timeout:.0f} s" if d is None else f"{d:.3f}s"

        def ratio(m: float, d: float | None = d) -> str:
            return f"> {dvc_timeout / m:.0f}x" if d is None else f"{d / m:.1f}x"

        goal = targets.get(n)
        ok = "" if goal is None else ("ok" if com <= goal else f"> {goal}s")
        print(f"{n:>6} | {rep:>8.3f}s | {com:>8.3f}s | {dvc:>10} | {ratio(rep):>12} | {ratio(com):>12} |"
              f" {1000 * com / n:>8.2f} | {ok:>6}")
    worst = min((r["dvc"] or dvc_timeout) / (r["repeat"] or 1) for r in results.values())
    print(f"target: a repeated no-op plan at least 10x faster than dvc status at every size: "
          f"{'ok' if worst >= 10 else 'MISSED'} (the smallest ratio is {worst:.1f}x)")
    if len(results) > 1:
        for column in ("repeat", "computed"):
            small, large = min(results), max(results)
            ms, ml = results[small][column], results[large][column]
            assert ms is not None and ml is not None
            marginal = (ml - ms) / (large - small) * 1000
            print(f"growth ({column}): marginal {marginal:.3f} ms per node from {small} to {large} nodes; "
                  f"{large // small}x the nodes took {ml / ms:.1f}x the time")
            sizes_sorted = sorted(results)
            for a, b in zip(sizes_sorted, sizes_sorted[1:], strict=False):
                ta, tb = results[a][column], results[b][column]
                assert ta is not None and tb is not None
                print(f"  {a:>5} → {b:>5} nodes: +{(tb - ta) / (b - a) * 1000:.3f} ms per added node")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dvc-timeout", type=float, default=300.0, help="seconds before a dvc run is cut off")
    parser.add_argument("--keep", type=Path, help="build the projects here and keep them")
    parser.add_argument("--breakdown", action="store_true",
                        help="where the smallest size's computed plan spends its time (importtime, cProfile)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="mlmake-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    base = median_of([sys.executable, "-c", "pass"], workdir, args.runs, 60) or 0.0
    results = {}
    try:
        for n in sizes:
            results[n] = bench(n, args.runs, args.dvc_timeout, workdir)
        table(results, args.runs, args.dvc_timeout, base)
        if args.breakdown:
            breakdown(workdir / f"n{min(sizes)}")
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
