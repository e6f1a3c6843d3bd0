"""Plain data as YAML and JSON hold it: what a configuration, a param or a metric is."""

from __future__ import annotations

from typing import TypeAlias

# a value read from mlproject.yaml or written to the lock: scalars, lists and string-keyed mappings
Json: TypeAlias = str | int | float | bool | None | list["Json"] | dict[str, "Json"]
