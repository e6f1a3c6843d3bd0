"""`mlmake serve` against a minimal hand-written FastAPI + xgboost service, on loopback.

Builds a copy of examples/churn (model + http bundle), then starts two services on
free 127.0.0.1 ports, both on uvicorn with the same settings and the same model file:

  ours      mlmake.serve: validation against the signature, prediction ids, labels,
            the JSONL prediction log, the hot-swap watcher
  baseline  written below: request.json(), a dict lookup per category, inplace_predict,
            {"predictions": [...]}; no validation, no log

One client (http.client, a kept-alive connection) sends the same requests to each,
alternating blocks so drift hits both alike: single full rows and 1 000-row batches,
and key lookups to ours alone. Prints p50/p99 latency, throughput and ours/baseline; then
single raw rows (features computed by the service from the feature set's SQL, compiled for one
row: ml/rowplan.py) against single feature rows, to ours alone, and their p50 ratio; and, in
this process, a raw row's features computed compiled and by polars' SQL (the path a query
outside the compiled subset takes), side by side.

Run: python benchmarks/serve.py [--single 3000] [--batch 300] [--block 100]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request  # module level: FastAPI resolves the handler's annotations here

ROOT = Path(__file__).resolve().parent.parent
DEPLOY, MODEL = "churn_api", "churn_xgb"
TARGET = 1.2
RAW_TARGET = 1.5  # a raw row's p50 against a feature row's (request-time features, issue 19)


# --- the baseline service ---------------------------------------------------------------


def run_baseline(model_dir: Path, port: int) -> None:
    """A minimal FastAPI + xgboost service: what one writes by hand in ten minutes."""
    import numpy as np
    import uvicorn
    import xgboost as xgb

    signature = json.loads((model_dir / "signature.json").read_text())
    names = [i["name"] for i in signature["inputs"]]
    codes = {i["name"]: {c: float(n) for n, c in enumerate(i["categories"])}
             for i in signature["inputs"] if "categories" in i}
    booster = xgb.Booster()
    booster.load_model(str(model_dir / "model.json"))

    def encode(row: dict[str, Any]) -> list[float]:
        return [codes[n].get(row[n], np.nan) if n in codes else float(row[n]) for n in names]

    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        data = await request.json()
        rows = data.get("rows", [data])
        x = np.array([encode(r) for r in rows], dtype=np.float32)
        return {"predictions": booster.inplace_predict(x).tolist()}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


# --- setup --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_project(tmp: Path) -> Path:
    root = tmp / "churn"
    shutil.copytree(ROOT / "examples" / "churn", root, ignore=shutil.ignore_patterns("build", ".mlmake", "*.lock"))
    subprocess.run([sys.executable, "-m", "mlmake", "-C", str(root), "build", f"deploy.{DEPLOY}"],
                   check=True, capture_output=True)
    return root


def start(argv: list[str], port: int, cwd: Path) -> subprocess.Popen[bytes]:
    # one OpenMP thread in both: mlmake serve sets it itself (workers spinning between small
    # requests stall everything else on a small machine); the baseline gets it from here
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise SystemExit(f"service exited: {proc.stderr.read().decode() if proc.stderr else ''}")
    proc.kill()
    raise SystemExit(f"service on port {port} did not start within 60 s")


# --- measuring ----------------------------------------------------------------------------


class Client:
    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.conn.connect()
        # http.client writes the headers and the body separately: without this, Nagle's
        # algorithm and the server's delayed ACK add 40 ms stalls that measure the kernel
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def post(self, body: bytes) -> tuple[float, bytes]:
        started = time.perf_counter()
        try:
            self.conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
            response = self.conn.getresponse()
        except OSError as exc:
            took = time.perf_counter() - started
            raise SystemExit(f"request to port {self.conn.port} failed after {took:.3f}s: {exc!r}") from None
        data = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}: {data[:300]!r}")
        return elapsed, data


def measure(clients: dict[str, Client], bodies: dict[str, bytes], total: int, block: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in clients}
    for name, client in clients.items():  # warm-up
        for _ in range(min(50, total)):
            client.post(bodies[name])
    done = 0
    while done < total:
        n = min(block, total - done)
        for name, client in clients.items():
            times[name] += [client.post(bodies[name])[0] for _ in range(n)]
        done += n
    return times


def summary(times: list[float]) -> tuple[float, float, float]:
    """p50 and p99 in ms, and requests per second (one client, back to back)."""
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return statistics.median(ordered) * 1e3, p99 * 1e3, len(times) / sum(times)


def report(label: str, times: dict[str, list[float]], rows: int) -> list[float]:
    ours, base = summary(times["ours"]), summary(times["baseline"])
    ratios = [ours[0] / base[0], ours[1] / base[1], base[2] / ours[2]]
    print(f"{label:<16}{'ours':>9}{ours[0]:>9.3f}{ours[1]:>9.3f}{ours[2]:>9.0f}{ours[2] * rows:>11.0f}")
    print(f"{'':<16}{'baseline':>9}{base[0]:>9.3f}{base[1]:>9.3f}{base[2]:>9.0f}{base[2] * rows:>11.0f}")
    print(f"{'':<16}{'ratio':>9}{ratios[0]:>8.2f}x{ratios[1]:>8.2f}x{ratios[2]:>8.2f}x")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=3000, help="single-row requests per service")
    parser.add_argument("--batch", type=int, default=300, help="1 000-row requests per service")
    parser.add_argument("--block", type=int, default=20, help="requests per block before switching service")
    parser.add_argument("--baseline", nargs=2, metavar=("MODEL_DIR", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline:
        run_baseline(Path(args.baseline[0]), int(args.baseline[1]))
        return
    import polars as pl

    with tempfile.TemporaryDirectory() as tmp:
        root = build_project(Path(tmp))
        table = pl.read_parquet(root / "build/features/customer_features/data.parquet")
        signature = json.loads((root / f"build/models/{MODEL}/signature.json").read_text())
        inputs = [i["name"] for i in signature["inputs"]]
        rows = table.select(inputs).head(1000).to_dicts()
        ports = {"ours": free_port(), "baseline": free_port()}
        code = (f"from pathlib import Path; from mlmake.serve.server import serve; "
                f"serve(Path({str(root)!r}), {DEPLOY!r}, port={ports['ours']})")
        env_note = f"{os.cpu_count()} cores, python {sys.version.split()[0]}"
        procs = [start([sys.executable, "-c", code], ports["ours"], root),
                 start([sys.executable, __file__, "--baseline", str(root / f"build/models/{MODEL}"),
                        str(ports["baseline"])], ports["baseline"], root)]
        try:
            clients = {name: Client(port) for name, port in ports.items()}
            one = json.dumps(rows[0]).encode()
            batch = json.dumps({"rows": rows}).encode()
            _check_same(clients, batch)
            print(f"mlmake serve vs a minimal FastAPI + xgboost service; churn model, loopback, {env_note}")
            print(f"{'':<16}{'':>9}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'rows/s':>11}")
            single = measure(clients, {"ours": one, "baseline": one}, args.single, args.block)
            r1 = report("single row", single, 1)
            many = measure(clients, {"ours": batch, "baseline": batch}, args.batch, max(2, args.block // 10))
            r2 = report("1 000 rows", many, len(rows))
            key = [clients["ours"].post(json.dumps({"customer_id": 17}).encode())[0] for _ in range(args.single)]
            p50, p99, rate = summary(key)
            print(f"{'key lookup':<16}{'ours':>9}{p50:>9.3f}{p99:>9.3f}{rate:>9.0f}   (no baseline)")
            worst = max(r1 + r2)
            verdict = "within" if worst <= TARGET else "NOT within"
            print(f"worst ratio {worst:.2f}x: {verdict} the {TARGET}x target")
            raw = pl.read_parquet(root / "build/datasets/customers/data.parquet").drop("churned").head(200)
            request_time(clients["ours"], rows[:200], raw.to_dicts(), args.single, args.block)
            compute_only(root, raw.to_dicts())
        finally:
            for proc in procs:
                if proc.poll() is not None and proc.stderr:
                    print(f"a service exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
                proc.terminate()
                proc.wait(timeout=10)


def request_time(client: Client, feature_rows: list[dict[str, Any]], raw_rows: list[dict[str, Any]], total: int,
                 block: int) -> None:
    """Single rows two ways, to the same service, alternating blocks: the feature row a client
    computed itself, and the raw customer row whose features (events looked up by key, counted
    and summed by the feature set's SQL) the service computes. The same 200 customers cycled,
    so no row is answered from anything but the computation."""
    bodies = {"feature row": [json.dumps(r).encode() for r in feature_rows],
              "raw row": [json.dumps(r).encode() for r in raw_rows]}
    times: dict[str, list[float]] = {name: [] for name in bodies}
    for items in bodies.values():  # warm-up
        for body in items[:50]:
            client.post(body)
    done = 0
    while done < total:
        n = min(block, total - done)
        for name, items in bodies.items():
            times[name] += [client.post(items[(done + i) % len(items)])[0] for i in range(n)]
        done += n
    (fp50, fp99, frate), (rp50, rp99, rrate) = summary(times["feature row"]), summary(times["raw row"])
    print(f"{'single row':<16}{'features':>9}{fp50:>9.3f}{fp99:>9.3f}{frate:>9.0f}   (client sends the features)")
    print(f"{'':<16}{'raw row':>9}{rp50:>9.3f}{rp99:>9.3f}{rrate:>9.0f}   (features computed by the sql, compiled)")
    ratio = rp50 / fp50
    verdict = "within" if ratio <= RAW_TARGET else "NOT within"
    print(f"raw/feature p50 {ratio:.2f}x: {verdict} the {RAW_TARGET}x target")


def compute_only(root: Path, raw_rows: list[dict[str, Any]], rounds: int = 5) -> None:
    """A raw row's features in this process, no HTTP: the compiled SQL (what the service runs)
    against polars' SQL planned and run on a one-row frame (what it ran before, and still runs
    for a query outside the compiled subset); the same rows, alternating rounds."""
    import dataclasses

    from mlmake.serve.live import load_bundle

    compiled = load_bundle(str(root / "build" / "deploy" / DEPLOY)).raw
    if compiled is None or compiled.fast is None:
        raise SystemExit("the bundle's SQL is not compiled for one row")
    ways = {"compiled": compiled, "polars sql": dataclasses.replace(compiled, fast=None)}
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, raw in ways.items():
            for row in raw_rows:
                started = time.perf_counter()
                raw.feature_row(row, ("body",), [])
                times[name].append(time.perf_counter() - started)
    p50 = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    print(f"{'features only':<16}{'compiled':>9}{p50['compiled']:>9.3f}   (in process, no HTTP; p50 ms)")
    print(f"{'':<16}{'polars':>9}{p50['polars sql']:>9.3f}   (polars' SQL on a one-row frame: "
          f"{p50['polars sql'] / p50['compiled']:.0f}x)")


def _check_same(clients: dict[str, Client], batch: bytes) -> None:
    """Both services must give the same probabilities for the same rows."""
    ours = json.loads(clients["ours"].post(batch)[1])["probabilities"]
    base = json.loads(clients["baseline"].post(batch)[1])["predictions"]
    if ours != base:
        raise SystemExit("the two services disagree on the same rows")


if __name__ == "__main__":
    main()
