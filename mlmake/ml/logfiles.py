"""The files of a prediction log: the live one and its rotated copies (no heavy imports)."""

from __future__ import annotations

import glob
import os
import re


def log_files(path: str) -> list[str]:
    """The log's rotated files (`FILE.1` the newest, the highest number the oldest), oldest
    first, then the live file."""
    rotated = [p for p in glob.glob(glob.escape(path) + ".*") if re.fullmatch(r"\d+", p.rsplit(".", 1)[1])]
    rotated.sort(key=lambda p: -int(p.rsplit(".", 1)[1]))
    return rotated + ([path] if os.path.isfile(path) else [])
