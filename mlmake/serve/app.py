"""The FastAPI app of a serving bundle.

    POST /predict    one row (features or raw, raw.py), a batch or an entity key → predictions
    POST /feedback   {"prediction_id": …, "label": …} → the true label, logged
    GET  /health     {"status": "ok", "model": …, "fingerprint": …}; without the token (a load
                     balancer's probe) just {"status": "ok"}, unless the health check is private
    GET  /metadata   the manifest (fingerprint, metrics, lineage, versions) and the input schema

Errors are {"detail": [{"loc", "type", "msg", "input"}]} as FastAPI writes them:
400 a body that is not interoperable JSON (body.py), 401 no or wrong token, 404 unknown key
or prediction id, 413 body over the limit, 422 a body that does not fit the signature (each
problem names its field). A client's bytes never get a 5xx.

The handlers read the body themselves instead of declaring a pydantic model: the
row's fields are only known from the bundle, which may change while serving."""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mlmake import __version__
from mlmake.ml.rows import MAX_PROBLEMS, Problem
from mlmake.serve.body import parse
from mlmake.serve.live import Live
from mlmake.serve.log import PredictionLog
from mlmake.serve.predictor import Rejected, answer, check_feedback

MAX_BODY_BYTES = 16 * 1024 * 1024
JSON = "application/json"


@dataclass(frozen=True)
class Settings:
    token: str | None = None  # a bearer token every request must carry
    max_body_bytes: int = MAX_BODY_BYTES
    public_health: bool = True  # GET /health answers without the token (load balancers probe so)


def create_app(live: Live, log: PredictionLog, settings: Settings) -> FastAPI:
    """The app answering with `live.current`; the watcher runs while the app does."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.open()
        live.start()
        try:
            yield
        finally:
            live.stop()
            log.close()

    app = FastAPI(title=f"mlmake serve: {live.current.manifest.get('deploy', '')}", version=__version__,
                  lifespan=lifespan)
    if settings.token:
        app.add_middleware(TokenGuard, token=settings.token, public=("/health",) if settings.public_health else ())

    @app.post("/predict", openapi_extra=_request_body(live))
    async def predict(request: Request) -> Response:
        bundle = live.current  # one read: the whole request is answered by one model version
        request_id = secrets.token_hex(8)
        try:
            body = await _body(request, settings.max_body_bytes)
            result = answer(bundle, parse(body, request.headers.get("content-type", "")), request_id)
        except Rejected as exc:
            return _problems(exc.status, exc.problems)
        content = _dumps(result.payload)
        log.prediction(request_id, result.rows, bundle.model, bundle.fingerprint, body, content, result.features)
        return Response(content, media_type=JSON)

    @app.post("/feedback")
    async def feedback(request: Request) -> Response:
        bundle = live.current
        try:
            body = await _body(request, settings.max_body_bytes)
            request_id, row, label = check_feedback(bundle, parse(body, request.headers.get("content-type", "")))
            rows = log.rows_of(request_id)
            if rows is None or row >= rows:
                raise Rejected(404, [Problem(("body", "prediction_id"), "unknown_prediction",
                                             f"no prediction {request_id}-{row} in {log.path}")])
        except Rejected as exc:
            return _problems(exc.status, exc.problems)
        record = log.feedback(request_id, row, label, bundle.model, bundle.fingerprint)
        return Response(_dumps({"recorded": True, **record}), media_type=JSON)

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        bundle = live.current
        if settings.token and not carries_token(request.headers.raw, settings.token.encode()):
            return {"status": "ok"}  # a probe without the token learns nothing about the model
        return {"status": "ok", "model": bundle.model, "fingerprint": bundle.fingerprint}

    @app.get("/metadata")
    async def metadata() -> Response:
        bundle = live.current
        keys = ("deploy", "model", "metrics", "gates", "lineage", "versions", "store", "files")
        out = {k: bundle.manifest.get(k) for k in keys} | {
            "fingerprint": bundle.fingerprint, "inputs": bundle.scorer.signature.get("inputs"),
            "input_schema": bundle.encoder.json_schema(),
            "raw_input_schema": bundle.raw.json_schema() if bundle.raw else None,
            "loaded_at": datetime.fromtimestamp(bundle.loaded_at, UTC).isoformat(timespec="seconds")}
        return Response(_dumps(out), media_type=JSON)

    return app


def _request_body(live: Live) -> dict[str, Any]:
    """The OpenAPI request body of /predict: a feature row, a raw row when the feature set runs per
    request, or a batch of them (the bundle loaded at start; a rebuilt one may differ)."""
    bundle = live.current
    rows = [bundle.encoder.json_schema()] + ([bundle.raw.json_schema()] if bundle.raw else [])
    batch = {"type": "array", "items": {"anyOf": rows}}
    schema = {"anyOf": [*rows, batch, {"type": "object", "properties": {"rows": batch}, "required": ["rows"]}]}
    return {"requestBody": {"required": True, "content": {JSON: {"schema": schema}}}}


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused past `limit` bytes before it is all read."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise Rejected(413, [_too_large(limit)])
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(413, [_too_large(limit)])
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> Problem:
    return Problem(("body",), "too_large", f"the body is over the limit of {limit} bytes; send fewer rows a request")


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=str).encode()


def _problems(status: int, problems: list[Problem]) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="mlmake"'} if status == 401 else None
    detail = [p.as_json() for p in problems[:MAX_PROBLEMS]]
    try:
        content = _dumps({"detail": detail})
    except (ValueError, RecursionError):  # an echoed input nested past the encoder's depth
        content = _dumps({"detail": [d | {"input": None} for d in detail]})
    return Response(content, status_code=status, media_type=JSON, headers=headers)


class TokenGuard:
    """ASGI middleware: every HTTP request but those to the public paths must carry
    `Authorization: Bearer TOKEN`."""

    def __init__(self, app: ASGIApp, token: str, public: tuple[str, ...] = ()) -> None:
        self.app = app
        self.token = token.encode()
        self.public = public  # paths that answer without the token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.public \
                and not carries_token(scope["headers"], self.token):
            response = _problems(401, [Problem(("header", "authorization"), "unauthorized",
                                               "send the service's token as 'Authorization: Bearer TOKEN'")])
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def carries_token(headers: Any, token: bytes) -> bool:
    """Whether the raw ASGI headers hold `Authorization: Bearer TOKEN`."""
    header = next((v for k, v in headers if k == b"authorization"), b"")
    scheme, _, credential = header.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(), token)
