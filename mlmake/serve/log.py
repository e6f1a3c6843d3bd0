"""The service's JSONL log: one line per /predict request and one per /feedback.

    {"type": "prediction", "request_id": "…", "rows": 2, "time": "…Z", "model": "…",
     "fingerprint": "…", "request": <the body as sent>, "response": <the answer>,
     "features": {"0": {…}}}                        (the stored rows a key lookup used)
    {"type": "feedback", "prediction_id": "…-1", "request_id": "…", "row": 1, "label": …,
     "time": "…Z", "model": "…", "fingerprint": "…"}

A prediction id is `REQUEST_ID-ROW`. The request and response are spliced in as the
bytes already parsed and sent, so logging costs one write, not a second encoding.
Each line is one write() to a file opened for appending, so lines of concurrent
writers do not interleave.

The log rotates by size: a line that would take the file past `max_bytes` first moves it to
FILE.1 (FILE.1 to FILE.2, …, keeping `keep` of them), so a monitor reads the newest
traffic from FILE.N … FILE.1, FILE (mlmake.ml.predlog). Every line keeps the model's
fingerprint: a monitor reads one model's lines only."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from mlmake.ml.logfiles import log_files

RECENT = 100_000  # request ids remembered for /feedback; older ones are found by scanning the file
MAX_BYTES = 100 * 1024 * 1024  # a log file rotates before it grows past this
KEEP = 10  # rotated files kept (FILE.1 … FILE.10); older ones are removed


class PredictionLog:
    def __init__(self, path: str, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self._recent: OrderedDict[str, int] = OrderedDict()
        self._fd = -1
        self._size = 0
        self.open()

    def open(self) -> None:
        """Open the file for appending (again, after `close`); creates its folder."""
        if self._fd < 0:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._size = os.fstat(self._fd).st_size

    def _write(self, line: bytes) -> None:
        if self._size and self._size + len(line) > self.max_bytes:
            self._rotate()
        os.write(self._fd, line)
        self._size += len(line)

    def _rotate(self) -> None:
        """FILE → FILE.1, FILE.1 → FILE.2, …; the oldest beyond `keep` is removed."""
        self.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{self.path}.{self.keep}")
        for n in range(self.keep - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}.{n}", f"{self.path}.{n + 1}")
        os.replace(self.path, f"{self.path}.1")
        self.open()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def prediction(self, request_id: str, rows: int, model: str, fingerprint: str, request: bytes,
                   response: bytes, features: dict[int, dict[str, Any]]) -> None:
        head = {"type": "prediction", "request_id": request_id, "rows": rows, "time": _now(), "model": model,
                "fingerprint": fingerprint}
        extra = b',"features":' + _dumps({str(n): f for n, f in features.items()}) if features else b""
        # a JSON body may be pretty-printed; raw newlines are whitespace there (inside strings they are escaped)
        body = request.replace(b"\r", b" ").replace(b"\n", b" ")
        self._write(_dumps(head)[:-1] + b',"request":' + body + b',"response":' + response + extra + b"}\n")
        self._recent[request_id] = rows
        if len(self._recent) > RECENT:
            self._recent.popitem(last=False)

    def feedback(self, request_id: str, row: int, label: Any, model: str, fingerprint: str) -> dict[str, Any]:
        record = {"type": "feedback", "prediction_id": f"{request_id}-{row}", "request_id": request_id, "row": row,
                  "label": label, "time": _now(), "model": model, "fingerprint": fingerprint}
        self._write(_dumps(record) + b"\n")
        return record

    def rows_of(self, request_id: str) -> int | None:
        """How many rows a logged request had, or None if this log never saw it."""
        if request_id in self._recent:
            return self._recent[request_id]
        needle = b'"request_id":"' + request_id.encode() + b'","rows":'
        for path in reversed(log_files(self.path)):  # the newest file first
            try:
                with open(path, "rb") as fh:
                    for line in fh:
                        if needle in line and line.startswith(b'{"type":"prediction"'):
                            return int(json.loads(line)["rows"])
            except (OSError, ValueError, KeyError):
                return None
        return None


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _now() -> str:
    return datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
