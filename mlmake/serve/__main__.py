"""`python -m mlmake.serve BUNDLE`: serve a bundle folder without a project (a docker
image's command), and `python -m mlmake.serve --check` (its health check)."""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from mlmake.core.errors import MlmakeError

TOKEN_ENV = "MLMAKE_SERVE_TOKEN"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlmake.serve", description=__doc__)
    parser.add_argument("bundle", nargs="?", help="the bundle folder (build/deploy/NAME of an http target)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--token-env", default=TOKEN_ENV, help="the variable holding the bearer token")
    parser.add_argument("--log", help="the JSONL prediction log (default: predictions.jsonl beside the bundle)")
    parser.add_argument("--max-body-bytes", type=int, default=16 * 1024 * 1024)
    parser.add_argument("--private-health", action="store_true",
                        help="GET /health needs the token too (by default it answers without it)")
    parser.add_argument("--check", action="store_true", help="exit 0 if the service on --port is healthy")
    args = parser.parse_args(argv)
    if args.check:
        return check(args.host, args.port, os.environ.get(args.token_env))
    if not args.bundle:
        parser.error("the bundle folder is required")
    from mlmake.serve.server import serve_bundle

    try:
        serve_bundle(Path(args.bundle), args.host, args.port, token_env=args.token_env,
                     log=Path(args.log) if args.log else None, max_body_bytes=args.max_body_bytes,
                     public_health=not args.private_health)
    except MlmakeError as exc:
        sys.stderr.write(exc.render() + "\n")
        return exc.exit_code
    return 0


def check(host: str, port: int, token: str | None) -> int:
    request = urllib.request.Request(f"http://{host}:{port}/health")
    if token:
        request.add_header("Authorization", f"Bearer {token.strip()}")
    try:
        with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310 - a fixed http URL
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


if __name__ == "__main__":
    sys.exit(main())
