"""Running a bundle as a web service on uvicorn: `serve` for a deploy target of a
project (what `mlmake serve DEPLOY` calls), `serve_bundle` for a bundle folder (what a
docker image runs)."""

from __future__ import annotations

import gc
import ipaddress
import os
import sys
from pathlib import Path
from typing import Any

from mlmake.core.errors import MlmakeError, did_you_mean
from mlmake.serve.app import MAX_BODY_BYTES
from mlmake.serve.log import MAX_BYTES as LOG_MAX_BYTES

TOKEN_ENV = "MLMAKE_SERVE_TOKEN"
SERVABLE = ("http", "docker")


def serve(root: Path, deploy: str, host: str = "127.0.0.1", port: int = 8000, *, token_env: str = TOKEN_ENV,
          log: Path | None = None, max_body_bytes: int = MAX_BODY_BYTES, poll_s: float = 1.0,
          threads: int = 1, access_log: bool = False, public_health: bool = True,
          log_max_bytes: int = LOG_MAX_BYTES) -> None:
    """Serve the bundle of deploy target DEPLOY of the project at ROOT until interrupted.

    Predictions go to .mlmake/serve/DEPLOY/predictions.jsonl unless `log` is given."""
    folder = bundle_folder(root, deploy)
    name = deploy.removeprefix("deploy.")
    log = log or root / ".mlmake" / "serve" / name / "predictions.jsonl"
    serve_bundle(folder, host, port, token_env=token_env, log=log, max_body_bytes=max_body_bytes,
                 poll_s=poll_s, threads=threads, access_log=access_log, public_health=public_health,
                 log_max_bytes=log_max_bytes)


def bundle_folder(root: Path, deploy: str) -> Path:
    """The bundle of an http (or docker) deploy target; MlmakeError saying what to do if none."""
    from mlmake.core.spec import load_project

    project = load_project(root, None, ())
    name = deploy.removeprefix("deploy.")
    kind = project.kinds.get(f"deploy.{name}")
    if kind is None:
        known = sorted(project.section("deploy"))
        http = [n for n in known if project.kinds[f"deploy.{n}"] == "http"]
        hint = did_you_mean(name, known)
        listed = f"; the http targets are {', '.join(http)}" if known else "; mlproject.yaml declares none"
        raise MlmakeError(f"unknown deploy target '{deploy}'" + (f" ({hint})" if hint else "") + listed)
    if kind not in SERVABLE:
        raise MlmakeError(f"deploy.{name} is a {kind} target; `mlmake serve` runs http targets")
    folder = root / "build" / "deploy" / name
    folder = folder / "bundle" if kind == "docker" else folder
    if not (folder / "manifest.json").is_file():
        raise MlmakeError(f"deploy.{name} is not built yet; run `mlmake build deploy.{name}` first")
    return folder


def serve_bundle(folder: Path, host: str = "127.0.0.1", port: int = 8000, *, token_env: str = TOKEN_ENV,
                 log: Path | None = None, max_body_bytes: int = MAX_BODY_BYTES, poll_s: float = 1.0,
                 threads: int = 1, access_log: bool = False, public_health: bool = True,
                 log_max_bytes: int = LOG_MAX_BYTES) -> None:
    """Serve a bundle folder until interrupted."""
    import uvicorn

    token = read_token(token_env)
    app = build_app(folder, token=token, log=log or folder.parent / "predictions.jsonl",
                    max_body_bytes=max_body_bytes, poll_s=poll_s, threads=threads, public_health=public_health,
                    log_max_bytes=log_max_bytes)
    bundle = app.state.live.current
    say(f"mlmake serve: deploy {bundle.manifest.get('deploy')} (model {bundle.model}, fingerprint "
        f"{bundle.fingerprint}) on http://{host}:{port}  [POST /predict, POST /feedback, GET /health, GET /metadata]")
    say(f"mlmake serve: {_token_line(token_env, token, public_health)}; predictions logged to {app.state.log.path}")
    if not token and not _is_loopback(host):
        say(f"mlmake serve: warning: listening on {host} without a token; set {token_env} to require one")
    # what is loaded now lives as long as the process: keep it out of the garbage collector's
    # full passes, which otherwise walk every object of polars, xgboost and fastapi again and again
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(app, host=host, port=port, access_log=access_log, log_level="info", server_header=False)
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit:  # uvicorn exits with 3 when it cannot bind, which reads as an mlmake bug
        if server.started:
            raise
    if not server.started:
        raise MlmakeError(f"cannot listen on {host}:{port}; is the port in use? (choose another with --port)")


def _token_line(token_env: str, token: str | None, public_health: bool) -> str:
    if not token:
        return "no token required"
    return f"a bearer token from ${token_env} is required" + (" (GET /health answers without it)"
                                                              if public_health else " (also for GET /health)")


def build_app(folder: Path, *, token: str | None = None, log: Path, max_body_bytes: int = MAX_BODY_BYTES,
              poll_s: float = 1.0, threads: int = 1, public_health: bool = True,
              log_max_bytes: int = LOG_MAX_BYTES) -> Any:
    """The FastAPI app for a bundle folder (loaded now; MlmakeError if it cannot be)."""
    from mlmake.serve.app import Settings, create_app
    from mlmake.serve.live import Live
    from mlmake.serve.log import PredictionLog

    if max_body_bytes < 1:
        raise MlmakeError(f"the body size limit must be positive, got {max_body_bytes}")
    live = Live(str(folder), poll_s, threads)
    try:
        prediction_log = PredictionLog(str(log), log_max_bytes)
    except OSError as exc:
        raise MlmakeError(f"cannot open the prediction log {log}: {exc.strerror}") from None
    app = create_app(live, prediction_log, Settings(token, max_body_bytes, public_health))
    app.state.live, app.state.log = live, prediction_log
    return app


def read_token(variable: str) -> str | None:
    """The bearer token from an environment variable; None when it is not set."""
    value = os.environ.get(variable)
    if value is None:
        return None
    if not value.strip():
        raise MlmakeError(f"${variable} is set but empty; set a token or unset it to serve without one")
    return value.strip()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
