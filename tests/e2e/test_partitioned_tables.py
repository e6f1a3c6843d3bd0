"""Tables in parts (issue 17): a dataset read from a folder of parquet files and written in parts,
a feature set computed part by part from it, and a model and a batch deploy reading the parts —
with the same rows, metrics and scores as the one-file build, the same bytes on every thread
count, only the changed part rewritten, restored from the cache, and located errors."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from click.testing import Result

from mlmake.ml.tables import table_files
from mlmake.state.lock import read_lock
from tests.helpers import REPO, build, write_files

RunCli = Callable[..., Result]
MakeProject = Callable[[dict[str, str | bytes]], Path]

PROJECT = """\
version: 1
project: big
datasets:
  customers:
    path: data/customers.csv
    schema:
      customer_id: {{type: int64, unique: true, nullable: false}}
      plan: {{type: str, nullable: false}}
      churned: {{type: bool, nullable: false}}
  events:
    path: data/events
    format: parquet
{events}features:
  activity:
    from: [customers, events]
    key: customer_id
{features}    sql: |
      SELECT c.customer_id, c.plan, c.churned, COUNT(e.id) AS n_events,
             COALESCE(SUM(e.amount), 0.0) AS spend, COALESCE(MAX(e.amount), 0.0) AS top
      FROM customers AS c LEFT JOIN events AS e ON e.customer_id = c.customer_id
      GROUP BY c.customer_id, c.plan, c.churned
models:
  churn:
    features: activity
    target: churned
    task: binary
    split: {{test_size: 0.25, seed: 1}}
    params: {{max_depth: 3, num_boost_round: 20, seed: 1}}
    metrics: [auc, logloss, accuracy]
deploy:
  scores:
    model: churn
    kind: batch
    input: activity
    output: build/scores.parquet
"""
IN_PARTS = {"events": "    partitions: 3\n    partition_by: customer_id\n", "features": "    partitions: 4\n"}
NODES = ("datasets.customers", "datasets.events", "features.activity", "models.churn", "deploy.scores")
CUSTOMERS = 300


def source_files() -> dict[str, str | bytes]:
    """300 customers (csv) and their ~900 events, as three parquet files; amounts with many digits,
    so a sum taken in another order differs in the last bit."""
    rng = random.Random(7)
    customers = ["customer_id,plan,churned"]
    events: list[tuple[int, int, float]] = []
    for cid in range(1, CUSTOMERS + 1):
        n = rng.randrange(0, 7)
        events += [(len(events) + 1, cid, rng.random() * 100) for _ in range(n)]
        churned = rng.random() < (0.75 if n < 2 else 0.15)
        customers.append(f"{cid},{rng.choice(['basic', 'pro'])},{str(churned).lower()}")
    rng.shuffle(events)
    files: dict[str, str | bytes] = {"data/customers.csv": "\n".join(customers) + "\n"}
    for i in range(3):
        rows = events[i::3]
        frame = pl.DataFrame({"id": [r[0] for r in rows], "customer_id": [r[1] for r in rows],
                              "amount": [r[2] for r in rows]})
        files[f"data/events/part-{i}.parquet"] = parquet_bytes(frame)
    return files


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def project(root: Path, parts: bool) -> Path:
    text = PROJECT.format(**(IN_PARTS if parts else {"events": "", "features": ""}))
    return write_files(root, {"mlproject.yaml": text, **source_files()})


def files_under(folder: Path) -> dict[str, str]:
    """Every file under a folder → the sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def table(folder: Path, key: str = "customer_id") -> pl.DataFrame:
    return pl.read_parquet(table_files(str(folder))).sort(key, maintain_order=True)


def built(run_cli: RunCli, root: Path, *args: str) -> dict[str, str]:
    result, ran = build(run_cli, root, *args)
    assert result.exit_code == 0, result.output
    return ran


# --- parts give what one file gives ---------------------------------------------------------------


def test_a_dataset_and_a_feature_set_in_parts_feed_a_model_with_the_metrics_of_one_file(
        run_cli: RunCli, tmp_path: Path) -> None:
    one, parts = project(tmp_path / "one", parts=False), project(tmp_path / "parts", parts=True)
    built(run_cli, one)
    assert built(run_cli, parts) == {"datasets.customers": "restored", "datasets.events": "built",
                                     "features.activity": "built", "models.churn": "built", "deploy.scores": "built"}

    assert sorted(files_under(parts / "build/datasets/events")) == [
        "contract.json", "parts/part-00000.parquet", "parts/part-00001.parquet", "parts/part-00002.parquet"]
    assert sorted(files_under(parts / "build/features/activity")) == [
        "parts/part-00000.parquet", "parts/part-00001.parquet", "parts/part-00002.parquet",
        "parts/part-00003.parquet", "schema.json"]
    schema = json.loads((parts / "build/features/activity/schema.json").read_text())
    assert schema.pop("partitions") == {"by": ["customer_id"], "count": 4}
    assert schema == json.loads((one / "build/features/activity/schema.json").read_text())
    contract = json.loads((parts / "build/datasets/events/contract.json").read_text())
    assert contract.pop("partitions") == {"by": ["customer_id"], "count": 3}
    assert contract == json.loads((one / "build/datasets/events/contract.json").read_text())
    # the same rows, to the last bit: each customer's events stay in one part, in file order
    assert table(parts / "build/features/activity").equals(table(one / "build/features/activity"))
    assert table(parts / "build/datasets/events", "id").equals(table(one / "build/datasets/events", "id"))

    lock, one_lock = read_lock(parts), read_lock(one)
    output = lock.nodes["features.activity"].outputs["build/features/activity"]
    assert str(output["hash"]).startswith("dir:")
    columns = output["columns"]
    assert isinstance(columns, dict)
    assert sorted(columns) == ["churned", "customer_id", "n_events", "plan", "spend", "top"]
    assert lock.nodes["models.churn"].metrics == one_lock.nodes["models.churn"].metrics
    assert files_under(parts / "build/models/churn") == files_under(one / "build/models/churn")
    scores = [pl.read_parquet(root / "build/scores.parquet").drop("model_fingerprint") for root in (one, parts)]
    assert scores[0].equals(scores[1])  # in the key's order, as from one file

    result, ran = build(run_cli, parts)
    assert (result.exit_code, ran) == (0, {})
    assert result.stdout.splitlines()[-1] == "Build: 0 built, 5 up to date."


# --- determinism ------------------------------------------------------------------------------------------


def cli(root: Path, *args: str, threads: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("POLARS_MAX_THREADS", "POLARS_NO_PARTITION")}
    env["POLARS_MAX_THREADS"] = str(threads)
    done = subprocess.run([sys.executable, "-m", "mlmake", "-C", str(root), *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_parts_are_byte_identical_across_thread_counts_and_pass_check_determinism(
        run_cli: RunCli, tmp_path: Path) -> None:
    root = project(tmp_path, parts=True)
    cli(root, "build", "features.activity", threads=1)
    first = files_under(root / "build")
    for threads in (4, 16):
        cli(root, "build", "--force", "datasets.events", "features.activity", threads=threads)
        assert files_under(root / "build") == first, f"POLARS_MAX_THREADS={threads}"
    done = cli(root, "build", "--force", "--check-determinism", "features.activity", threads=3)
    assert done.stdout.splitlines()[-1] == "Build: 1 built, 2 up to date."
    assert files_under(root / "build") == first
    log = (root / ".mlmake" / "logs" / "features.activity.log").read_text()
    assert log.count("determinism check: the sql gave the same table twice") == 4  # once a part


# --- a change to one source file ---------------------------------------------------------------------


def test_a_change_to_one_source_file_rewrites_only_the_parts_its_rows_land_in(
        run_cli: RunCli, tmp_path: Path) -> None:
    root = project(tmp_path, parts=True)
    built(run_cli, root)
    events, features = files_under(root / "build/datasets/events"), files_under(root / "build/features/activity")
    source = root / "data/events/part-1.parquet"
    frame = pl.read_parquet(source)
    cid = int(frame["customer_id"][0])
    source.write_bytes(parquet_bytes(frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.col("amount") + 1).otherwise(pl.col("amount")).alias("amount"))))

    result, ran = build(run_cli, root)
    assert result.exit_code == 0, result.output
    assert ran == {"datasets.events": "built", "features.activity": "built", "models.churn": "built",
                   "deploy.scores": "built"}
    assert "[2/4] features.activity  (upstream datasets.events changed: column amount)\n" in result.stdout
    after = files_under(root / "build/datasets/events"), files_under(root / "build/features/activity")
    assert changed(events, after[0]) == [f"parts/part-{part(cid, 3):05d}.parquet"]
    assert changed(features, after[1]) == [f"parts/part-{part(cid, 4):05d}.parquet"]


def part(customer_id: int, parts: int) -> int:
    """The part a customer's rows land in."""
    from mlmake.ml.parts import part_of

    return int(pl.DataFrame({"customer_id": [customer_id]}).select(part_of(["customer_id"], parts)).item())


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    assert sorted(before) == sorted(after)
    return sorted(name for name in before if before[name] != after[name])


# --- restored from the cache --------------------------------------------------------------------------


def test_a_clone_without_build_restores_the_parts_from_the_cache(
        run_cli: RunCli, tmp_path: Path) -> None:
    root = project(tmp_path, parts=True)
    built(run_cli, root)
    clone = tmp_path.parent / f"{tmp_path.name}-clone"
    shutil.copytree(root, clone, ignore=shutil.ignore_patterns("build", ".mlmake"))
    result, ran = build(run_cli, clone)
    assert result.exit_code == 0, result.output
    assert ran == dict.fromkeys(NODES, "restored")
    assert result.stdout.splitlines()[-1] == "Build: 0 built, 5 restored from cache, 0 up to date."
    assert files_under(clone / "build") == files_under(root / "build")
    assert (clone / "mlproject.lock").read_bytes() == (root / "mlproject.lock").read_bytes()


# --- errors ---------------------------------------------------------------------------------------------


def test_partitions_below_one_or_without_a_key_are_located_errors(
        make_project: MakeProject, run_cli: RunCli) -> None:
    text = PROJECT.format(events="    partitions: 0\n", features="    partitions: 4\n").replace(
        "    key: customer_id\n", "").replace("      churned: {type: bool, nullable: false}\n",
                                               "      churned: {type: bool, nullable: false}\n"
                                               "    partition_by: customer_id\n")
    root = make_project({"mlproject.yaml": text, **source_files()})
    result = run_cli(root, "validate")
    assert (result.exit_code, result.stderr) == (1, (
        "mlproject.yaml:14:17: datasets.events.partitions: must be >= 1, got 0\n"
        "      partitions: 0\n"
        "                  ^\n"
        "1 error found\n"))
    make_project({"mlproject.yaml": text.replace("partitions: 0", "partitions: 3")})
    result = run_cli(root, "validate")
    assert (result.exit_code, result.stderr) == (1, (
        "mlproject.yaml:10:19: datasets.customers.partition_by: partition_by without partitions: "
        "the table is one file\n"
        "      partition_by: customer_id\n"
        "                    ^\n"
        "  hint: add partitions: N, or remove partition_by\n"
        "mlproject.yaml:18:17: features.activity.partitions: a feature set in parts needs a `key:`: its rows are "
        "assigned to parts by it\n"
        "      partitions: 4\n"
        "                  ^\n"
        "  hint: declare the entity key, e.g. key: customer_id\n"
        "2 errors found\n"))


def failed(run_cli: RunCli, root: Path) -> list[str]:
    result = run_cli(root, "build")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return [line for line in result.stderr.splitlines() if not line.startswith("  |")
            and line != "  last lines of its log:"]


def test_a_key_or_partition_column_the_tables_lack_fails_the_node_naming_the_columns(
        make_project: MakeProject, run_cli: RunCli) -> None:
    text = PROJECT.format(events="    partitions: 3\n    partition_by: customer\n", features="    partitions: 4\n")
    root = make_project({"mlproject.yaml": text, **source_files()})
    assert failed(run_cli, root) == [
        "FAILED datasets.events: 'data/events' breaks its contract (1 problem):",
        "  partition_by: column 'customer': missing; the file has columns ['id', 'customer_id', 'amount'] "
        "(did you mean 'customer_id'?)",
        "error: 1 node(s) failed: datasets.events",
    ]
    make_project({"mlproject.yaml": PROJECT.format(**IN_PARTS).replace("key: customer_id", "key: customer")})
    assert failed(run_cli, root) == [
        "FAILED features.activity: key (customer): no input has the key column to split the rows into parts by; "
        "customers has ['customer_id', 'plan', 'churned'] (did you mean 'customer_id'?); "
        "events has ['id', 'customer_id', 'amount'] (did you mean 'customer_id'?)",
        "error: 1 node(s) failed: features.activity",
    ]


def test_a_query_that_moves_rows_between_parts_is_refused(make_project: MakeProject, run_cli: RunCli) -> None:
    text = PROJECT.format(**IN_PARTS).replace("SELECT c.customer_id,", "SELECT c.customer_id + 1000 AS customer_id,")
    root = make_project({"mlproject.yaml": text, **source_files()})
    in_part_0 = [c for c in range(1, CUSTOMERS + 1) if part(c, 4) == 0]
    strays = [c + 1000 for c in in_part_0 if part(c + 1000, 4) != 0]
    lines = failed(run_cli, root)
    assert lines[0] == (
        f"FAILED features.activity: part 0 of 4: the query returned {len(strays)} rows whose key belongs to another "
        f"part, e.g. {strays[:5]}: in parts, each key's row must come from that key's rows alone (joins and "
        "GROUP BY on the key); drop `partitions:` for this query")
    assert f"\n{lines[0]}\n" in (REPO / "README.md").read_text(encoding="utf-8")  # the README quotes it
    assert lines[1:] == ["error: 1 node(s) failed: features.activity"]


@pytest.mark.parametrize("parts", [1, 5])
def test_any_number_of_parts_holds_every_row_once(make_project: MakeProject, run_cli: RunCli, parts: int) -> None:
    text = PROJECT.format(events="", features=f"    partitions: {parts}\n")
    root = make_project({"mlproject.yaml": text, **source_files()})
    built(run_cli, root, "features.activity")
    files = table_files(str(root / "build/features/activity"))
    assert [os.path.basename(f) for f in files] == [f"part-{i:05d}.parquet" for i in range(parts)]
    frames = [pl.read_parquet(f) for f in files]
    assert sum(f.height for f in frames) == CUSTOMERS
    assert all(f["customer_id"].is_sorted() for f in frames)
    assert sorted(pl.concat(frames)["customer_id"].to_list()) == list(range(1, CUSTOMERS + 1))


def test_an_input_cut_by_the_key_into_as_many_parts_is_read_one_part_file_a_part(
        run_cli: RunCli, tmp_path: Path) -> None:
    one = project(tmp_path / "one", parts=False)
    same = write_files(tmp_path / "same", {"mlproject.yaml": PROJECT.format(
        events="    partitions: 4\n    partition_by: customer_id\n", features="    partitions: 4\n"), **source_files()})
    built(run_cli, one, "features.activity")
    built(run_cli, same, "features.activity")
    assert table(same / "build/features/activity").equals(table(one / "build/features/activity"))
    log = (same / ".mlmake" / "logs" / "features.activity.log").read_text()
    assert f"{CUSTOMERS} rows, 6 columns from customers, events, in 4 parts under parts/ (split: customers, events; " \
           "read part by part: events)\n" in log


HOOK = """\
import polars as pl


def activity(customers, events):
    spend = events.group_by("customer_id").agg(pl.col("amount").sum().alias("spend"), pl.len().alias("n_events"))
    return customers.join(spend, on="customer_id", how="left").with_columns(pl.col("n_events").fill_null(0))
"""


def test_a_python_hook_in_parts_gives_the_rows_of_one_call(
        run_cli: RunCli, tmp_path: Path) -> None:
    tables = {}
    for name, parts in (("one", ""), ("parts", "    partitions: 3\n")):
        text = PROJECT.format(events="", features=parts).split("    sql: |")[0] + "    python: hooks.py:activity\n"
        root = write_files(tmp_path / name, {"mlproject.yaml": text, "hooks.py": HOOK, **source_files()})
        built(run_cli, root, "features.activity")
        tables[name] = table(root / "build/features/activity")
        log = (root / ".mlmake" / "logs" / "features.activity.log").read_text()
    assert tables["parts"].equals(tables["one"]) and tables["one"].height == CUSTOMERS
    assert "in 3 parts under parts/ (split: customers, events; read part by part: none)" in log


def test_a_model_with_engine_dask_on_the_feature_set_in_parts_has_the_metrics_of_one_file(
        run_cli: RunCli, tmp_path: Path) -> None:
    pytest.importorskip("xgboost.dask")
    dask = "    task: binary\n    engine: dask\n"
    roots = {}
    for name, parts in (("one", {"events": "", "features": ""}), ("parts", IN_PARTS)):
        text = PROJECT.format(**parts).replace("    task: binary\n", dask)
        roots[name] = write_files(tmp_path / name, {"mlproject.yaml": text, **source_files()})
        built(run_cli, roots[name], "models.churn")
    log = (roots["parts"] / ".mlmake" / "logs" / "models.churn.log").read_text()
    assert "features.activity (4 file(s))" in log
    metrics = {name: read_lock(root).nodes["models.churn"].metrics for name, root in roots.items()}
    assert metrics["parts"] == metrics["one"] and sorted(metrics["one"]) == ["accuracy", "auc", "logloss"]
