"""The online store as a node (issue 19): a copy of examples/churn whose http target serves a store
materialized over live events the model does not train on. A change to those events only refreshes
the store and the bundle that copies it: `plan` says so, `build` retrains nothing, the run records
show it, and the running service answers with the new aggregate, exactly as a batch target scoring
the same data does."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
from click.testing import Result

from mlmake.state.lock import read_lock
from tests.e2e.test_serve import Service, serve
from tests.helpers import build, copy_example, run_cli, run_records

RunCli = Callable[..., Result]
MakeProject = Callable[[dict[str, str | bytes]], Path]

LIVE_EVENTS = """\
  live_events:
    description: Events as the service sees them, newer than those the model was trained on.
    path: data/live_events.csv
    schema:
      id:          {type: int64, unique: true, nullable: false}
      customer_id: {type: int64, nullable: false, min: 1}
      kind:        {type: str, nullable: false, allowed: [login, purchase, support]}
      amount:      {type: float64, nullable: false, min: 0}

features:
"""
STORE = """\
    model: churn_xgb
    kind: http
    store: churn_store
  churn_store:
    kind: store
    features: customer_features
    sources: {events: live_events}
  churn_image: {model: churn_xgb, kind: docker, store: churn_store}
  live_scores:
    description: The batch target on the store's data, to hold the service to.
    model: churn_xgb
    kind: batch
    input: live_features
    output: build/live_scores.parquet
"""
CUSTOMER = 17
EVENTS = "id,customer_id,kind,amount\n1,1,login,0.0\n2,2,purchase,10.5\n3,17,login,0.0\n"
MORE = "".join(f"{n},{CUSTOMER},purchase,400.0\n" for n in range(4, 16))


def store_project(root: Path) -> Path:
    """examples/churn with live events, a store over them, and a feature set and batch target on the
    same data (the feature set's sql with `live_events` for `events`)."""
    copy_example("churn", root)
    yaml = root / "mlproject.yaml"
    text = yaml.read_text(encoding="utf-8")
    sql = text[text.index("    sql: |"):text.index("\nmodels:")]
    live = ("  live_features:\n    from: [customers, live_events]\n    key: customer_id\n"
            + sql.replace("JOIN events AS e", "JOIN live_events AS e") + "\n")
    text = text.replace("features:\n", LIVE_EVENTS, 1).replace("\nmodels:", live + "\nmodels:", 1)
    text = text.replace("    model: churn_xgb\n    kind: http\n", STORE, 1)
    yaml.write_text(text, encoding="utf-8")
    (root / "data").mkdir()
    (root / "data/live_events.csv").write_text(EVENTS, encoding="utf-8")
    return root


def steady(text: str) -> str:
    """Build output without its timings."""
    return re.sub(r" in \d+\.\ds", " in Ts", text)


def raw_customer(root: Path) -> dict[str, Any]:
    rows = pl.read_parquet(root / "build/datasets/customers/data.parquet").drop("churned")
    return rows.filter(pl.col("customer_id") == CUSTOMER).row(0, named=True)


def live_score(root: Path) -> float:
    scores = pl.read_parquet(root / "build/live_scores.parquet")
    return float(scores.filter(pl.col("customer_id") == CUSTOMER)["probability"][0])


def served_store(service: Service) -> Any:
    return service.client.get("/metadata").json()["lineage"]["nodes"]["deploy.churn_store"]["fingerprint"]


PLAN = """\
 ~ datasets.live_events        data/live_events.csv changed
 = steps.generate
 = datasets.customers
 = datasets.events
 = features.customer_features
~? features.live_features      upstream datasets.live_events will rebuild; rebuilds only if columns id, customer_id, \
amount change
 = models.churn_xgb
 = steps.report
~? deploy.churn_store          upstream datasets.live_events will rebuild; rebuilds only if its output changes
 ~ deploy.churn_api            upstream datasets.live_events fingerprint changed
 ~ deploy.churn_image          upstream datasets.live_events fingerprint changed
 ~ deploy.live_scores          upstream datasets.live_events fingerprint changed
 = deploy.churn_scores

Plan: 4 to build, 2 to check after upstream, 7 up to date.
"""
BUILD = """\
[1/6] datasets.live_events  (data/live_events.csv changed)
  done datasets.live_events in Ts  rows=15, columns=4
[2/6] features.live_features  (upstream datasets.live_events changed: columns id, customer_id, amount)
  done features.live_features in Ts  rows=1000, columns=9
[3/6] deploy.churn_store  (upstream datasets.live_events changed)
  done deploy.churn_store in Ts  rows=1000, raw_rows=features computed per request
[4/6] deploy.churn_api  (upstream deploy.churn_store changed; upstream datasets.live_events fingerprint changed; \
upstream deploy.churn_store fingerprint changed)
  done deploy.churn_api in Ts  model_fingerprint={model}, raw_rows=features computed per request
[5/6] deploy.churn_image  (upstream deploy.churn_store changed; upstream datasets.live_events fingerprint changed; \
upstream deploy.churn_store fingerprint changed)
  done deploy.churn_image in Ts  model_fingerprint={model}
[6/6] deploy.live_scores  (upstream features.live_features changed; upstream datasets.live_events fingerprint \
changed; upstream features.live_features fingerprint changed)
  done deploy.live_scores in Ts  rows=1000, model_fingerprint={model}
Build: 6 built, 7 up to date.
"""


def test_a_data_only_change_refreshes_the_store_without_retraining(tmp_path: Path) -> None:
    root = store_project(tmp_path / "churn")
    first = run_cli(root, "build")
    assert first.exit_code == 0, first.stdout + first.stderr
    model = re.search(r"model_fingerprint=(\w+)", first.stdout).group(1)  # type: ignore[union-attr]
    graph = run_cli(root, "graph").stdout  # the bundle reads the store, not the model's feature set
    assert "deploy.churn_api            http      <- models.churn_xgb, deploy.churn_store\n" in graph
    assert "deploy.churn_store          store     <- datasets.customers, datasets.live_events\n" in graph
    service = serve(root, "churn_api")
    try:
        before = service.predict(raw_customer(root)).json()["probability"]
        assert before == live_score(root)
        with open(root / "data/live_events.csv", "a", encoding="utf-8") as fh:
            fh.write(MORE)  # twelve large purchases by one customer, in the served data only

        plan = run_cli(root, "plan")
        assert (plan.exit_code, plan.stdout) == (0, PLAN)
        result, ran = build(run_cli, root)
        assert result.exit_code == 0, result.stdout + result.stderr
        assert steady(result.stdout) == BUILD.format(model=model)
        assert ran == dict.fromkeys(["datasets.live_events", "features.live_features", "deploy.churn_store",
                                     "deploy.churn_api", "deploy.churn_image", "deploy.live_scores"], "built")
        assert "models.churn_xgb" not in ran  # the model was not retrained
        store_run = run_records(run_cli, root, "--node", "deploy.churn_store")[0]
        assert (store_run["status"], store_run["reasons"], store_run["metrics"]) == (
            "built", ["upstream datasets.live_events changed"],
            {"rows": 1000, "raw_rows": "features computed per request"})
        assert [r["status"] for r in run_records(run_cli, root, "--node", "models.churn_xgb")] == ["built"]
        assert run_cli(root, "plan").stdout.endswith("\nPlan: 0 to build, 13 up to date.\n")
        image = root / "build/deploy/churn_image/bundle"  # the docker target serves the same store
        assert (image / "store.parquet").read_bytes() == (root / "build/deploy/churn_api/store.parquet").read_bytes()
        assert json.loads((image / "manifest.json").read_text())["store"]["source"] == "deploy.churn_store"

        wait_for_store(service, read_lock(root).nodes["deploy.churn_store"].fingerprint)
        after = service.predict(raw_customer(root)).json()
        assert after["probability"] != before
        assert (after["probability"], after["fingerprint"]) == (live_score(root), model)
        assert service.predict({"customer_id": CUSTOMER}).json()["probability"] == after["probability"]
    finally:
        service.stop()


def wait_for_store(service: Service, fingerprint: str) -> None:
    """Until the service has swapped in the bundle of the refreshed store (bounded)."""
    deadline = time.monotonic() + 60
    while served_store(service) != fingerprint:
        assert time.monotonic() < deadline, "the service did not load the rebuilt bundle"
        time.sleep(0.2)


BROKEN = """\
version: 1
project: demo
datasets:
  customers: {path: data/customers.csv}
  events: {path: data/events.csv}
features:
  customer_features:
    from: [customers, events]
    key: customer_id
    sql: SELECT c.customer_id, c.churned, COUNT(e.id) AS n FROM customers c LEFT JOIN events e USING (customer_id) \
GROUP BY c.customer_id, c.churned
  hooked:
    from: customers
    key: customer_id
    python: features.py:rows
  keyless:
    from: customers
    sql: SELECT * FROM customers
  derived:
    from: [customer_features]
    key: customer_id
    sql: SELECT * FROM customer_features
models:
  churn: {features: customer_features, target: churned, task: binary}
deploy:
  scores: {model: churn, kind: batch}
  api: {model: churn, kind: http, store: scores}
  api2: {model: churn, kind: docker, store: keyless_store}
  churn_store: {kind: store, features: customer_features, sources: {event: events}}
  hooked_store: {kind: store, features: hooked}
  keyless_store: {kind: store, features: keyless}
  derived_store: {kind: store, features: derived}
"""
ERRORS = """\
mlproject.yaml:26:42: deploy.api.store: deploy target scores is a batch target, not a store
    api: {model: churn, kind: http, store: scores}
                                           ^
  hint: name a deploy target of kind: store
mlproject.yaml:27:45: deploy.api2.store: store keyless_store holds feature set keyless, but model churn is tra\
ined on customer_features
    api2: {model: churn, kind: docker, store: keyless_store}
                                              ^
  hint: a store of customer_features serves churn
mlproject.yaml:28:76: deploy.churn_store.sources.event: feature set customer_features reads no table 'event' (\
did you mean 'events'?)
    churn_store: {kind: store, features: customer_features, sources: {event: events}}
                                                                             ^
  hint: it reads customers, events
mlproject.yaml:29:41: deploy.hooked_store.features: feature set hooked is a python hook; a store runs a featur\
e set's sql (hooks are not carried)
    hooked_store: {kind: store, features: hooked}
                                          ^
  hint: write hooked in sql, or serve it without a store
mlproject.yaml:30:42: deploy.keyless_store.features: feature set keyless declares no key, so a store cannot lo\
ok its rows up
    keyless_store: {kind: store, features: keyless}
                                           ^
  hint: declare the entity key of keyless (key: COLUMN)
mlproject.yaml:31:42: deploy.derived_store.features: feature set derived reads customer_features, which is not\
 a dataset; a store computes from datasets only
    derived_store: {kind: store, features: derived}
                                           ^
  hint: name a dataset for it in sources:, or serve derived without a store
6 errors found
"""

UNKNOWN = """\
mlproject.yaml:25:42: deploy.api.store: unknown node 'churn_stor'
    api: {model: churn, kind: http, store: churn_stor}
                                           ^
  hint: did you mean 'churn_store'?
mlproject.yaml:26:77: deploy.churn_store.sources.events: unknown dataset 'event'
    churn_store: {kind: store, features: customer_features, sources: {events: event}}
                                                                              ^
  hint: did you mean 'events'?
mlproject.yaml:27:40: deploy.other_store.features: unknown feature set 'customer_feature'
    other_store: {kind: store, features: customer_feature}
                                         ^
  hint: did you mean 'customer_features'?
3 errors found
"""


def test_a_store_that_cannot_serve_is_a_located_error(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": BROKEN, "features.py": "def rows(customers):\n    return customers\n"})
    result = run_cli(root, "validate")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == ERRORS


def test_serve_refuses_a_store(make_project: MakeProject) -> None:
    root = store_project(make_project({}) / "churn")
    result = run_cli(root, "serve", "churn_store")
    assert (result.exit_code, result.stderr) == (
        1, "error: deploy.churn_store is a store target; `mlmake serve` runs http targets\n")


def test_a_store_naming_unknown_nodes_is_a_located_error(make_project: MakeProject) -> None:
    lines = BROKEN.splitlines(keepends=True)
    valid = "".join(lines[:lines.index("deploy:\n") + 1])
    root = make_project({"mlproject.yaml": valid + """\
  api: {model: churn, kind: http, store: churn_stor}
  churn_store: {kind: store, features: customer_features, sources: {events: event}}
  other_store: {kind: store, features: customer_feature}
"""})
    result = run_cli(root, "validate")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == UNKNOWN


SMALL = """\
version: 1
project: small
datasets:
  customers: {path: data/customers.csv}
  events: {path: data/events.csv}
  live_events: {path: data/live_events.csv}
features:
  activity:
    from: [customers, events]
    key: id
    sql: SELECT c.id, c.age, COUNT(e.customer) AS n FROM customers c LEFT JOIN events e ON e.customer = c.id \
GROUP BY c.id, c.age
deploy:
  live: {kind: store, features: activity, sources: {events: live_events}}
"""


def test_a_store_computes_the_feature_set_over_its_sources(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": SMALL, "data/customers.csv": "id,age\n1,30\n2,40\n",
                         "data/events.csv": "customer\n1\n", "data/live_events.csv": "customer\n2\n2\n1\n2\n"})
    result = run_cli(root, "build", "deploy.live")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "features.activity" not in result.stdout  # the store does not read the training table
    rows = pl.read_parquet(root / "build/deploy/live/store.parquet")
    assert rows.to_dicts() == [{"id": 1, "age": 30, "n": 1}, {"id": 2, "age": 40, "n": 3}]
    graph = run_cli(root, "graph")
    assert graph.stdout.endswith("deploy.live           store     <- datasets.customers, datasets.live_events\n")


def test_a_store_whose_key_repeats_over_its_sources_fails_its_build(make_project: MakeProject) -> None:
    root = make_project({"mlproject.yaml": SMALL, "data/customers.csv": "id,age\n1,30\n1,31\n",
                         "data/events.csv": "customer\n1\n", "data/live_events.csv": "customer\n1\n"})
    result = run_cli(root, "build", "deploy.live")
    assert result.exit_code == 1
    assert "feature set activity over the store's sources: key (id) is not unique: 2 rows share a key, " \
           "e.g. [1]" in result.stderr
    assert not (root / "build/deploy/live").exists()


SHADOWED = """\
version: 1
project: demo
datasets:
  customers: {path: data/customers.csv}
  events: {path: data/events.csv}
features:
  events:
    from: events
    key: id
    sql: SELECT id, customer_id, amount * 2 AS amount FROM events
  customer_features:
    from: [customers, events]
    key: customer_id
    sql: SELECT c.customer_id, c.churned, SUM(e.amount) AS spend FROM customers c LEFT JOIN events e USING \
(customer_id) GROUP BY c.customer_id, c.churned
models:
  churn: {features: customer_features, target: churned, task: binary}
deploy:
  churn_store: {kind: store, features: customer_features}
  live_store: {kind: store, features: customer_features, sources: {events: events}}
  api: {model: churn@production, kind: http, store: live_store}
"""
SHADOWED_ERRORS = """\
mlproject.yaml:18:40: deploy.churn_store.features: feature set customer_features reads events, which is the fea\
ture set of that name, read before the dataset; a store computes from datasets only
    churn_store: {kind: store, features: customer_features}
                                         ^
  hint: name a dataset for it in sources:, or serve customer_features without a store
mlproject.yaml:20:53: deploy.api.store: store live_store computes the workspace's customer_features, but churn@\
production may be a version trained on another definition of it
    api: {model: churn@production, kind: http, store: live_store}
                                                      ^
  hint: serve the workspace's model (model: churn) with the store, or drop store:
2 errors found
"""


def test_a_store_reads_tables_as_its_feature_set_does_and_serves_only_the_workspaces_model(
        make_project: MakeProject) -> None:
    """A bare table name is a feature set before a dataset, for the store as for the feature set
    (else the store would compute over the dataset the feature set does not read); `sources`
    naming the dataset is what a store needs. And a store computes the workspace's definition,
    which a version from the registry may not have been trained on."""
    root = make_project({"mlproject.yaml": SHADOWED})
    result = run_cli(root, "validate")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == SHADOWED_ERRORS


def test_a_store_whose_sql_fails_over_its_sources_says_what_it_read(make_project: MakeProject) -> None:
    """`sources` may rename a table to a dataset of other columns: the failure names what each
    table was read from."""
    root = make_project({"mlproject.yaml": SMALL.replace("{events: live_events}", "{customers: live_events}"),
                         "data/customers.csv": "id,age\n1,30\n", "data/events.csv": "customer\n1\n",
                         "data/live_events.csv": "customer\n1\n"})
    result = run_cli(root, "build", "deploy.live")
    assert result.exit_code == 1
    failed = next(line for line in result.stderr.splitlines() if line.startswith("FAILED deploy.live: "))
    assert failed.startswith("FAILED deploy.live: sql failed: ")
    assert failed.endswith(" (the store reads customers from datasets.live_events, events from datasets.events)")
    assert not (root / "build/deploy/live").exists()
