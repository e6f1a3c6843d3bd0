"""The prediction service for real: copies of examples/ built with the CLI, the service
started in a subprocess on a free loopback port, and HTTP requests against it.

Each service gets a bounded startup wait; every request has a timeout."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlmake.core.errors import MlmakeError
from mlmake.serve.server import bundle_folder
from mlmake.state.lock import read_lock
from tests.helpers import copy_example, run_cli

REPO = Path(__file__).resolve().parents[2]
TOKEN = "s3cret-token"
LIMIT = 1 << 20  # the body limit the services run with
STARTUP_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """A service process on a free port, and a client that carries the token."""

    def __init__(self, argv: list[str], cwd: Path, port: int, env: dict[str, str]) -> None:
        self.port = port
        self.out = cwd / f"service-{port}.log"
        with open(self.out, "wb") as log:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=os.environ | env, stdout=log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"})
        self._wait()

    def _wait(self) -> None:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the service exited: {self.out.read_text()}")
            try:
                if self.client.get("/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError(f"the service did not answer within {STARTUP_S}s: {self.out.read_text()}")

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def predict(self, body: Any) -> httpx.Response:
        return self.client.post("/predict", json=body)


def build_example(tmp: Path, name: str) -> Path:
    root = tmp / name
    copy_example(name, root)
    result = run_cli(root, "build")
    assert result.exit_code == 0, result.stdout + result.stderr
    return root


def serve(root: Path, deploy: str, *, public_health: bool = True) -> Service:
    port = free_port()
    code = (f"from pathlib import Path; from mlmake.serve.server import serve; "
            f"serve(Path({str(root)!r}), {deploy!r}, port={port}, max_body_bytes={LIMIT}, poll_s=0.2, "
            f"public_health={public_health})")
    return Service([sys.executable, "-c", code], root, port, {"MLMAKE_SERVE_TOKEN": TOKEN})


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Service]]:
    root = build_example(tmp_path_factory.mktemp("serve"), "churn")
    service = serve(root, "churn_api")
    yield root, service
    service.stop()


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Service]]:
    root = build_example(tmp_path_factory.mktemp("serve"), "penguins")
    service = serve(root, "species_api")
    yield root, service
    service.stop()


def fingerprint(root: Path, model: str) -> str:
    return read_lock(root).nodes[f"models.{model}"].fingerprint


def customers(root: Path) -> pl.DataFrame:
    """The churn feature table without its target, and the batch target's scores for each row."""
    table = pl.read_parquet(root / "build/features/customer_features/data.parquet").drop("churned")
    return table.join(pl.read_parquet(root / "build/scores.parquet"), on="customer_id")


INPUTS = ["age", "plan", "tenure_months", "monthly_fee", "region", "n_events", "total_spend"]


def row_of(table: pl.DataFrame, n: int, *, key: bool = False) -> dict[str, Any]:
    return table.select((["customer_id"] if key else []) + INPUTS).row(n, named=True)


# --- health, metadata, token ---------------------------------------------------------------


def test_health_and_metadata_report_the_model_built(churn: tuple[Path, Service]) -> None:
    root, service = churn
    expected = fingerprint(root, "churn_xgb")
    assert service.client.get("/health").json() == {"status": "ok", "model": "churn_xgb", "fingerprint": expected}
    meta = service.client.get("/metadata").json()
    assert meta["fingerprint"] == expected and meta["deploy"] == "churn_api"
    assert meta["metrics"] == json.loads((root / "build/models/churn_xgb/metrics.json").read_text())["metrics"]
    assert meta["lineage"]["data"] == read_lock(root).nodes["datasets.customers"].components["upstream"][
        "steps.generate"] | read_lock(root).nodes["datasets.events"].components["upstream"]["steps.generate"]
    assert meta["store"]["key"] == ["customer_id"] and meta["store"]["rows"] == 1000
    assert [i["name"] for i in meta["inputs"]] == INPUTS
    assert meta["input_schema"]["properties"]["plan"]["anyOf"][0] == {"enum": ["basic", "pro"]}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": TOKEN}])
@pytest.mark.parametrize(("method", "path"), [("GET", "/metadata"), ("POST", "/predict"), ("POST", "/feedback"),
                                              ("GET", "/docs")])
def test_every_endpoint_but_health_needs_the_token(churn: tuple[Path, Service], headers: dict[str, str],
                                                   method: str, path: str) -> None:
    _, service = churn
    response = httpx.request(method, service.url + path, headers=headers, json={"customer_id": 1}, timeout=30)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="mlmake"'
    assert response.json()["detail"][0]["loc"] == ["header", "authorization"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_health_answers_a_probe_without_the_token_and_tells_it_nothing_more(
        churn: tuple[Path, Service], headers: dict[str, str]) -> None:
    _, service = churn
    response = httpx.get(service.url + "/health", headers=headers, timeout=30)  # a load balancer's probe
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_a_private_health_check_needs_the_token(churn: tuple[Path, Service]) -> None:
    root, _ = churn
    private = serve(root, "churn_api", public_health=False)
    try:
        response = httpx.get(private.url + "/health", timeout=30)
        assert response.status_code == 401
        assert response.json()["detail"][0]["msg"] == "send the service's token as 'Authorization: Bearer TOKEN'"
        assert private.client.get("/health").json()["model"] == "churn_xgb"
    finally:
        private.stop()
    assert ("a bearer token from $MLMAKE_SERVE_TOKEN is required (also for GET /health)"
            in private.out.read_text())


# --- predictions equal the batch target's ---------------------------------------------------


def test_one_row_gets_the_batch_targets_prediction(churn: tuple[Path, Service]) -> None:
    root, service = churn
    table = customers(root)
    response = service.predict(row_of(table, 16))
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(body) == ["fingerprint", "model", "prediction", "prediction_id", "probability"]
    assert (body["prediction"], body["probability"]) == (table["prediction"][16], table["probability"][16])
    assert body["fingerprint"] == fingerprint(root, "churn_xgb")


def test_a_batch_gets_the_batch_targets_predictions(churn: tuple[Path, Service]) -> None:
    root, service = churn
    table = customers(root)
    rows = [row_of(table, n, key=True) for n in range(300)]
    for body in ({"rows": rows}, rows):
        response = service.predict(body)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["probabilities"] == table["probability"][:300].to_list()
        assert answer["predictions"] == table["prediction"][:300].to_list()
        assert answer["classes"] == [False, True]
        assert answer["keys"] == [{"customer_id": c} for c in table["customer_id"][:300]]
        assert answer["prediction_ids"] == [f"{answer['request_id']}-{n}" for n in range(300)]


def test_a_key_alone_reads_the_online_store(churn: tuple[Path, Service]) -> None:
    root, service = churn
    table = customers(root).filter(pl.col("customer_id").is_in([17, 18, 999]))
    expected = dict(zip(table["customer_id"], table["probability"], strict=True))
    for body in ({"customer_id": 17}, {"key": 17}):
        answer = service.predict(body).json()
        assert (answer["probability"], answer["key"]) == (expected[17], {"customer_id": 17})
    mixed = [{"customer_id": 18}, row_of(customers(root), 998, key=True)]
    answer = service.predict({"rows": mixed}).json()
    assert answer["probabilities"] == [expected[18], expected[999]]
    assert answer["keys"] == [{"customer_id": 18}, {"customer_id": 999}]


@pytest.mark.parametrize(("body", "status", "loc", "kind", "msg"), [
    ({"customer_id": 123456}, 404, ["body", "customer_id"], "unknown_key",
     "no row with customer_id = 123456 in the online store (1000 rows)"),
    ({"key": "17"}, 422, ["body", "key"], "key_type", "'customer_id': expected an integer, got '17'"),
    ([{"customer_id": 1}, {"customer_id": 0}], 404, ["body", 1, "customer_id"], "unknown_key",
     "no row with customer_id = 0 in the online store (1000 rows)"),
])
def test_a_bad_key_names_it(churn: tuple[Path, Service], body: Any, status: int, loc: list[Any], kind: str,
                            msg: str) -> None:
    response = churn[1].predict(body)
    assert response.status_code == status
    assert response.json()["detail"] == [{"loc": loc, "type": kind, "msg": msg, "input": response.json()["detail"][0]
                                          ["input"]}]


# --- bad requests -------------------------------------------------------------------------

GOOD = {"age": 40, "plan": "pro", "tenure_months": 12, "monthly_fee": 20.5, "region": "north", "n_events": 3,
        "total_spend": 100.0}


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in GOOD.items() if k != field}


@pytest.mark.parametrize(("body", "loc", "kind", "msg"), [
    (GOOD | {"age": "forty"}, ["body", "age"], "integer_type", "'age': expected an integer, got a string 'forty'"),
    (GOOD | {"monthly_fee": True}, ["body", "monthly_fee"], "number_type",
     "'monthly_fee': expected a number, got a boolean true"),
    (without("total_spend"), ["body", "total_spend"], "missing",
     "'total_spend' is missing; every input is required (send null for an unknown value)"),
    (GOOD | {"region": "mars"}, ["body", "region"], "unknown_category",
     "'region': unknown category 'mars'; the model knows 'east', 'north', 'south', 'west'"),
    (GOOD | {"plan": 1}, ["body", "plan"], "string_type", "'plan': expected a string, got a number 1"),
    (GOOD | {"regoin": "north"}, ["body", "regoin"], "extra_forbidden",
     "'regoin' is not an input of the model (did you mean 'region'?); the inputs are age, plan, tenure_months, "
     "monthly_fee, region, n_events, total_spend"),
    ({"rows": []}, ["body", "rows"], "empty_batch", "the batch is empty; send at least one row"),
    ([], ["body"], "empty_batch", "the batch is empty; send at least one row"),
    ({"rows": GOOD}, ["body", "rows"], "list_type", "'rows' must be an array of rows (JSON objects)"),
    ([GOOD, without("age")], ["body", 1, "age"], "missing",
     "'age' is missing; every input is required (send null for an unknown value)"),
    ([GOOD, 7], ["body", 1], "object_type", "a row must be a JSON object, got a number"),
    (7, ["body"], "body_type", 'expected a JSON object (one row), or an array of rows or {"rows": [...]} (a batch)'),
])
def test_a_request_that_does_not_fit_the_signature_gets_a_422_naming_the_field(
        churn: tuple[Path, Service], body: Any, loc: list[Any], kind: str, msg: str) -> None:
    response = churn[1].predict(body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0] | {"input": None} == {"loc": loc, "type": kind, "msg": msg, "input": None}


def test_null_is_an_unknown_value_not_an_error(churn: tuple[Path, Service]) -> None:
    response = churn[1].predict(GOOD | {"region": None, "age": None})
    assert response.status_code == 200 and 0 <= response.json()["probability"] <= 1


@pytest.mark.parametrize("body", [b'{"age": 40,', b"", b"NaN", b'{"age": Infinity}', b"\xff\xfe", b"[" * 100_000])
def test_malformed_json_is_a_400(churn: tuple[Path, Service], body: bytes) -> None:
    response = churn[1].client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    detail = response.json()["detail"][0]
    assert detail["type"] == "json_invalid" and detail["msg"].startswith("malformed JSON: ")


SURROGATE = "holds an unpaired surrogate (a \\ud800-\\udfff escape without its pair), which is not Unicode; " \
            "send UTF-8 text"
TOO_LARGE = "the number is beyond the range of a 64-bit float (about ±1.8e308)"


def problem(loc: list[Any], kind: str, msg: str) -> dict[str, Any]:
    return {"loc": loc, "type": kind, "msg": msg, "input": None}


@pytest.mark.parametrize(("path", "body", "detail"), [
    ("/predict", b'{"plan": "\\ud800"}',
     [problem(["body", "plan"], "string_unicode", f"'plan': the string {SURROGATE}")]),
    ("/predict", b'[{"age": 1}, {"plan": "x\\udc00y"}]',
     [problem(["body", 1, "plan"], "string_unicode", f"'plan': the string {SURROGATE}")]),
    ("/predict", b'{"\\ud800": 1}',
     [problem(["body", "\\ud800"], "string_unicode", f"'\\ud800': the name {SURROGATE}")]),
    ("/predict", b'"\\udfff"', [problem(["body"], "string_unicode", f"the string {SURROGATE}")]),
    ("/predict", b'{"age": 1e400}', [problem(["body", "age"], "number_too_large", f"'age': {TOO_LARGE}")]),
    ("/predict", b'{"rows": [{"monthly_fee": -1E+999}]}',
     [problem(["body", "rows", 0, "monthly_fee"], "number_too_large", f"'monthly_fee': {TOO_LARGE}")]),
    ("/predict", b'{"customer_id": 1' + b"0" * 400 + b"}",
     [problem(["body", "customer_id"], "number_too_large", f"'customer_id': {TOO_LARGE}")]),
    ("/feedback", b'{"prediction_id": "\\ud800", "label": true}',
     [problem(["body", "prediction_id"], "string_unicode", f"'prediction_id': the string {SURROGATE}")]),
    ("/feedback", b'{"prediction_id": "0123456789abcdef-0", "label": 1e400}',
     [problem(["body", "label"], "number_too_large", f"'label': {TOO_LARGE}")]),
    ("/feedback", b'[1e999, "\\ud800"]',
     [problem(["body", 0], "number_too_large", TOO_LARGE),
      problem(["body", 1], "string_unicode", f"the string {SURROGATE}")]),
])
def test_json_that_is_not_interoperable_is_a_400_naming_where(churn: tuple[Path, Service], path: str, body: bytes,
                                                              detail: list[dict[str, Any]]) -> None:
    response = churn[1].client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (400, {"detail": detail})


def test_a_surrogate_pair_and_a_tiny_number_are_fine(churn: tuple[Path, Service]) -> None:
    body = json.dumps(GOOD | {"plan": "\U0001f600", "monthly_fee": 0}).replace(": 0,", ": 1e-400,").encode()
    assert b"\\ud83d\\ude00" in body and b"1e-400" in body
    response = churn[1].client.post("/predict", content=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == ("'plan': unknown category '\U0001f600'; "
                                                   "the model knows 'basic', 'pro'")


@pytest.mark.parametrize(("content_type", "body", "msg"), [
    ("text/plain", b"age=40", "malformed JSON: Expecting value: line 1 column 1 (char 0) (sent as text/plain: the body "
                              "must be JSON)"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=age\r\n\r\n40\r\n--x--",
     "malformed JSON: Expecting value: line 1 column 1 (char 0) (sent as multipart/form-data: the body must be JSON)"),
    ("application/x-www-form-urlencoded", b"age=40&plan=pro", "malformed JSON: Expecting value: line 1 column 1 "
                                                             "(char 0) (sent as application/x-www-form-urlencoded: the "
                                                             "body must be JSON)"),
    ("application/json", b'{"plan": "caf\xe9"}', "malformed JSON: the body is not UTF-8 text (byte 0xe9 at offset 13)"),
    ("application/json", b"[" * 100_000, "malformed JSON: arrays and objects nested too deeply"),
])
def test_a_body_that_is_not_json_says_what_it_was_sent_as(churn: tuple[Path, Service], content_type: str,
                                                          body: bytes, msg: str) -> None:
    for path in ("/predict", "/feedback"):
        response = churn[1].client.post(path, content=body, headers={"Content-Type": content_type})
        assert response.status_code == 400, response.text
        assert response.json()["detail"][0]["msg"] == msg


def test_json_labelled_as_a_form_is_still_json(churn: tuple[Path, Service]) -> None:
    # `curl -d '{...}'` (the README's example) labels the body application/x-www-form-urlencoded
    for content_type in ("application/x-www-form-urlencoded", "text/plain"):
        response = churn[1].client.post("/predict", content=json.dumps(GOOD), headers={"Content-Type": content_type})
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("depth", [500, 900, 950, 990, 2000])
def test_deep_nesting_is_a_4xx_at_any_depth(churn: tuple[Path, Service], depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    for path, body in [("/predict", nested), ("/predict", b'{"age": %s}' % nested), ("/feedback", nested),
                       ("/predict", json.dumps(GOOD).encode()[:-1] + b', "customer_id": %s}' % nested)]:
        response = churn[1].client.post(path, content=body)
        detail = response.json()["detail"][0]
        if response.status_code == 400:  # past the parser's depth
            assert detail["msg"] == "malformed JSON: arrays and objects nested too deeply"
        else:
            assert response.status_code == 422
            assert detail["type"] in {"object_type", "body_type", "integer_type", "key_type"}, detail


# --- fuzz: whatever the bytes, never a 5xx ---------------------------------------------------

_chars = st.characters() | st.integers(0xD800, 0xDFFF).map(chr)  # lone surrogates too
_scalars = (st.none() | st.booleans() | st.floats() | st.integers(-(10 ** 400), 10 ** 400)
            | st.text(_chars, max_size=8) | st.sampled_from(["pro", "north", "0123456789abcdef-0"]))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(_chars, max_size=4), inner, max_size=3), max_leaves=8)
_rows = st.dictionaries(st.sampled_from([*GOOD, "customer_id", "key", "rows", "prediction_id", "label"]), _values,
                        max_size=4).map(lambda changes: GOOD | changes)


@st.composite
def request_bodies(draw: st.DrawFn) -> bytes:
    value = draw(st.one_of(_values, _rows, st.lists(_rows, max_size=3), _rows.map(lambda r: {"rows": [r]})))
    text = json.dumps(value, ensure_ascii=draw(st.booleans()))  # NaN and Infinity literals included
    data = text.encode("utf-8", "surrogatepass")  # unescaped lone surrogates: bytes that are not UTF-8
    if draw(st.booleans()):  # and then any bytes, anywhere
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=6)) + data[at + draw(st.integers(0, 4)):]
    return data


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(body=request_bodies(), path=st.sampled_from(["/predict", "/feedback"]),
       content_type=st.sampled_from(["application/json", "text/plain", "multipart/form-data", ""]))
def test_no_request_body_gets_a_5xx(churn: tuple[Path, Service], body: bytes, path: str, content_type: str) -> None:
    response = churn[1].client.post(path, content=body, headers={"Content-Type": content_type} if content_type else {})
    assert response.status_code < 500, (body, response.text)
    answer = response.json()
    assert response.status_code == 200 or answer["detail"], answer


def test_an_oversized_body_is_a_413_before_it_is_read(churn: tuple[Path, Service]) -> None:
    big = json.dumps({"rows": [GOOD] * 12_000}).encode()
    assert len(big) > LIMIT
    response = churn[1].client.post("/predict", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["detail"][0]["msg"] == (f"the body is over the limit of {LIMIT} bytes; "
                                                   "send fewer rows a request")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    assert churn[1].client.post("/predict", content=chunks()).status_code == 413
    assert churn[1].client.get("/health").status_code == 200


# --- the log and feedback -------------------------------------------------------------------


def log_lines(root: Path) -> list[dict[str, Any]]:
    text = (root / ".mlmake/serve/churn_api/predictions.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_predictions_and_feedback_are_logged(churn: tuple[Path, Service]) -> None:
    root, service = churn
    answer = service.predict([GOOD, {"customer_id": 5}]).json()
    logged = next(r for r in log_lines(root) if r.get("request_id") == answer["request_id"])
    assert logged["type"] == "prediction" and logged["rows"] == 2
    assert logged["request"] == [GOOD, {"customer_id": 5}] and logged["response"] == answer
    assert logged["fingerprint"] == fingerprint(root, "churn_xgb") and logged["time"].endswith("Z")
    assert logged["features"]["1"]["customer_id"] == 5 and set(logged["features"]["1"]) == {"customer_id", *INPUTS}
    pid = answer["prediction_ids"][1]
    response = service.client.post("/feedback", json={"prediction_id": pid, "label": True})
    assert response.status_code == 200, response.text
    feedback = log_lines(root)[-1]
    assert feedback | {"time": None} == {"type": "feedback", "prediction_id": pid, "request_id": answer["request_id"],
                                         "row": 1, "label": True, "time": None, "model": "churn_xgb",
                                         "fingerprint": logged["fingerprint"]}
    assert response.json() == {"recorded": True, **feedback}


@pytest.mark.parametrize(("body", "status", "loc"), [
    ({"prediction_id": "0123456789abcdef-0", "label": True}, 404, ["body", "prediction_id"]),
    ({"prediction_id": "nope", "label": True}, 422, ["body", "prediction_id"]),
    ({"label": True}, 422, ["body", "prediction_id"]),
    ({"prediction_id": "0123456789abcdef-0", "label": "yes"}, 422, ["body", "label"]),
    ({"prediction_id": "0123456789abcdef-0", "label": True, "note": 1}, 422, ["body", "note"]),
])
def test_bad_feedback_is_refused(churn: tuple[Path, Service], body: dict[str, Any], status: int,
                                 loc: list[Any]) -> None:
    response = churn[1].client.post("/feedback", json=body)
    assert response.status_code == status, response.text
    assert response.json()["detail"][0]["loc"] == loc


def test_feedback_for_a_row_beyond_its_request_is_a_404(churn: tuple[Path, Service]) -> None:
    answer = churn[1].predict(GOOD).json()
    request_id = answer["prediction_id"].rsplit("-", 1)[0]
    response = churn[1].client.post("/feedback", json={"prediction_id": f"{request_id}-1", "label": False})
    assert response.status_code == 404


# --- the bundle without a project, as a docker image runs it ----------------------------------


def test_the_bundle_serves_alone_without_the_build_tools(churn: tuple[Path, Service], tmp_path: Path) -> None:
    root, _ = churn
    bundle = tmp_path / "bundle"
    shutil.copytree(root / "build/deploy/churn_api", bundle)
    port = free_port()
    blocked = "import sys, runpy\nfor m in ('dvc', 'rich', 'ruamel', 'jsonschema', 'networkx'): sys.modules[m] = None\n"
    # a private health check, so that --check proves the token is right
    code = blocked + f"sys.argv = ['mlmake.serve', {str(bundle)!r}, '--port', '{port}', '--private-health']\n" \
                     "runpy.run_module('mlmake.serve', run_name='__main__')"
    service = Service([sys.executable, "-c", code], tmp_path, port, {"MLMAKE_SERVE_TOKEN": TOKEN})
    try:
        assert service.predict({"customer_id": 17}).status_code == 200
        check = [sys.executable, "-m", "mlmake.serve", "--check", "--port", str(port)]
        assert subprocess.run(check, env=os.environ | {"MLMAKE_SERVE_TOKEN": TOKEN}, timeout=30).returncode == 0
        assert subprocess.run(check, env=os.environ | {"MLMAKE_SERVE_TOKEN": "bad"}, timeout=30).returncode == 1
    finally:
        service.stop()
    assert (tmp_path / "predictions.jsonl").read_text().count('"type":"prediction"') == 1


def test_serve_explains_a_target_it_cannot_run(churn: tuple[Path, Service], tmp_path: Path) -> None:
    root, _ = churn
    with pytest.raises(MlmakeError, match=r"unknown deploy target 'churn_ap' \(did you mean 'churn_api'\?\); "
                                          r"the http targets are churn_api"):
        bundle_folder(root, "churn_ap")
    with pytest.raises(MlmakeError, match=r"deploy.churn_scores is a batch target; `mlmake serve` runs http"):
        bundle_folder(root, "churn_scores")
    fresh = tmp_path / "fresh"
    copy_example("churn", fresh)
    with pytest.raises(MlmakeError, match=r"deploy.churn_api is not built yet; run `mlmake build deploy.churn_api`"):
        bundle_folder(fresh, "churn_api")


def test_a_port_in_use_is_a_clear_error_not_a_crash(churn: tuple[Path, Service]) -> None:
    root, _ = churn
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "mlmake", "-C", str(root), "serve", "churn_api",
                               "--port", str(port)], capture_output=True, text=True, timeout=STARTUP_S,
                              env=os.environ | {"MLMAKE_SERVE_TOKEN": TOKEN})
    assert done.returncode == 1, done.stderr
    assert done.stderr.endswith(f"error: cannot listen on 127.0.0.1:{port}; is the port in use? "
                                "(choose another with --port)\n")
    assert "Traceback" not in done.stderr


# --- multiclass, and a rebuild while serving -------------------------------------------------


def penguin_rows(root: Path) -> tuple[list[dict[str, Any]], pl.DataFrame]:
    signature = json.loads((root / "build/models/species/signature.json").read_text())
    table = pl.read_parquet(root / "build/features/penguin_features/data.parquet")
    rows = table.select([i["name"] for i in signature["inputs"]]).to_dicts()
    return rows, pl.read_parquet(root / "build/deploy/species_scores/scores.parquet")


def expected_species(scores: pl.DataFrame) -> tuple[list[str], list[list[float]]]:
    probabilities = scores.select("probability_Adelie", "probability_Chinstrap", "probability_Gentoo")
    return scores["prediction"].to_list(), [list(r) for r in probabilities.rows()]


def test_multiclass_predictions_match_the_batch_target(penguins: tuple[Path, Service]) -> None:
    root, service = penguins
    rows, scores = penguin_rows(root)
    labels, probabilities = expected_species(scores)
    answer = service.predict({"rows": rows}).json()
    assert answer["classes"] == ["Adelie", "Chinstrap", "Gentoo"] and "keys" not in answer
    assert (answer["predictions"], answer["probabilities"]) == (labels, probabilities)
    one = service.predict(rows[200]).json()
    assert one["prediction"] == labels[200]
    assert one["probabilities"] == dict(zip(answer["classes"], probabilities[200], strict=True))


NO_KEY = ("'key': model species has no entity key (its feature set declares none), so no row can be looked up; "
          "send the inputs: island, bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g, bill_ratio, is_male")


@pytest.mark.parametrize(("body", "loc"), [({"key": 3}, ["body", "key"]),
                                           ({"rows": [{"key": 3}]}, ["body", "rows", 0, "key"]),
                                           ([{"key": "x"}], ["body", 0, "key"])])
def test_a_key_sent_to_a_model_without_one_is_told_so(penguins: tuple[Path, Service], body: Any,
                                                      loc: list[Any]) -> None:
    response = penguins[1].predict(body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail == [{"loc": loc, "type": "no_key", "msg": NO_KEY, "input": detail[0]["input"]}]


def test_a_rebuild_while_serving_switches_the_model_without_a_failed_request(
        penguins: tuple[Path, Service]) -> None:
    root, service = penguins
    rows, before = penguin_rows(root)
    old = fingerprint(root, "species")
    results: list[tuple[int, str, list[list[float]]]] = []
    stop = threading.Event()

    def stream() -> None:  # bounded: stops when told, after 20 000 requests or after 120 s
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
            while not stop.is_set() and len(results) < 20_000 and time.monotonic() < deadline:
                try:
                    response = client.post("/predict", json={"rows": rows[:5]})
                    body = response.json() if response.status_code == 200 else {}
                    results.append((response.status_code, body.get("fingerprint", ""), body.get("probabilities", [])))
                except httpx.HTTPError as exc:
                    results.append((0, repr(exc), []))

    thread = threading.Thread(target=stream)
    thread.start()
    try:
        wait_for(lambda: len(results) >= 100, 30)
        build = subprocess.run([sys.executable, "-m", "mlmake", "-C", str(root), "build", "-P",
                                "models.species.params.max_depth=1"], capture_output=True, text=True, timeout=120)
        assert build.returncode == 0, build.stdout + build.stderr
        new = fingerprint(root, "species")
        assert new != old
        wait_for(lambda: service.client.get("/health").json()["fingerprint"] == new, 30)
        seen = len(results)
        wait_for(lambda: len(results) >= max(300, seen + 100), 60)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert [r for r in results if r[0] != 200] == []
    prints = [r[1] for r in results]
    switch = prints.index(new)
    assert set(prints[:switch]) == {old} and set(prints[switch:]) == {new}, "one switch, never back"
    _, after = penguin_rows(root)
    assert all(r[2] == expected_species(before)[1][:5] for r in results[:switch])
    assert all(r[2] == expected_species(after)[1][:5] for r in results[switch:])
    assert expected_species(before)[1][:5] != expected_species(after)[1][:5]
    assert f"switched from model {old} to {new}" in service.out.read_text()


def wait_for(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s")
        time.sleep(0.05)
