"""The batch target's recipe: score a table with the model, write the scores and a manifest."""

from __future__ import annotations

import os
from typing import Any

from mlmake.core.errors import NodeError, did_you_mean
from mlmake.core.kind import Result, Task
from mlmake.kinds.target import task_folder
from mlmake.ml.tables import (
    dtype_name,
    first_line,
    log_line,
    scan_upstream,
    upstream_address,
    upstream_folder,
    upstream_key,
    write_json,
    write_parquet,
)

SCORES_FILE = "scores.parquet"
FINGERPRINT_COLUMN = "model_fingerprint"
ROW_COLUMN = "row"  # the row number, when the scored table has no key to join back on

def score(task: Task) -> Result:
    """Score the input table; write the scores and a manifest with the lineage."""
    folder = task.staged(task_folder(task))
    import polars as pl

    from mlmake.ml.bundle import MANIFEST_FILE, describe
    from mlmake.ml.scoring import load_scorer, predict, prediction_columns, table_matrix

    model = f"models.{task.config['model']}"
    scorer = load_scorer(upstream_folder(task, model), threads=task.threads)
    address = upstream_address(task, str(task.config.get("input") or scorer.signature["features"]))
    try:
        frame = scan_upstream(task, address).collect()
    except pl.exceptions.PolarsError as exc:
        raise NodeError(f"cannot read the table of {address}: {first_line(exc)}") from None
    _check_table(frame, scorer.inputs, address)
    manifest = describe(task, os.path.join(upstream_folder(task, model), scorer.files[0]), scorer.signature)
    fingerprint = manifest["model"]["fingerprint"]
    pred = predict(scorer, table_matrix(scorer, frame))
    key = [k for k in upstream_key(task, address) if k in frame.columns]
    ids = frame.select(key) if key else pl.DataFrame({ROW_COLUMN: pl.int_range(frame.height, eager=True)})
    # the label's type is that of the classes (as in the model's predictions.parquet), even with no rows
    label = pl.Series(scorer.classes).dtype if scorer.classes else pl.Float64
    columns = [pl.Series(n, v, dtype=label if n == "prediction" else pl.Float64)
               for n, v in prediction_columns(scorer, pred).items()]
    scores = ids.with_columns(*columns, pl.lit(fingerprint, dtype=pl.String).alias(FINGERPRINT_COLUMN))
    output = task.staged(task.config["output"]) if task.config.get("output") else os.path.join(folder, SCORES_FILE)
    write_parquet(scores, output)
    unknown = _unknown_categories(frame, scorer.inputs)
    manifest.update(input=address, rows=frame.height, columns=scores.columns, unknown_categories=unknown,
                    output=str(task.config.get("output") or f"{task_folder(task)}/{SCORES_FILE}"))
    write_json(os.path.join(folder, MANIFEST_FILE), manifest)
    log_line(task.log, f"scored {frame.height} rows of {address} with {model} (fingerprint {fingerprint})")
    for column, count in unknown.items():
        log_line(task.log, f"warning: {count} rows of '{column}' hold categories {model} never saw; "
                           "scored as missing values")
    return Result(metrics={"rows": frame.height, "model_fingerprint": fingerprint})


def _check_table(frame: Any, inputs: list[Any], address: str) -> None:
    """Every input must be a column, of a type the model's encoding can read."""
    problems = []
    for spec in inputs:
        if spec.name not in frame.columns:
            hint = did_you_mean(spec.name, frame.columns)
            problems.append(f"input '{spec.name}' is not a column of {address}" + (f" ({hint})" if hint else ""))
            continue
        kind, dtype = dtype_name(frame.schema[spec.name]), frame.schema[spec.name]
        text = kind in ("str", "category")
        if (spec.categories is not None) != text or not (text or dtype.is_numeric() or kind == "bool"):
            problems.append(f"column '{spec.name}' of {address} has type {kind}; the model was trained on "
                            f"{spec.type}")
    if problems:
        raise NodeError("; ".join(problems))


def _unknown_categories(frame: Any, inputs: list[Any]) -> dict[str, int]:
    """Per categorical input, how many non-null values are not in the model's categories."""
    import polars as pl

    out: dict[str, int] = {}
    for spec in inputs:
        if spec.categories is not None:
            column = frame[spec.name].cast(pl.String)
            count = int((column.is_not_null() & ~column.is_in(list(spec.categories))).sum())
            if count:
                out[spec.name] = count
    return out
