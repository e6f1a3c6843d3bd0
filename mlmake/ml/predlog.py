"""The service's prediction log (mlmake/serve/log.py) read as data, with polars, lazily: the
scored rows of one model fingerprint (a monitor never mixes models) with their scores, and the
`/feedback` labels joined to them by prediction id.

A line's request is one row (`{…}`), a batch (`{"rows": [{…}]}` or `[{…}]`) or keys whose stored
features the line keeps (`"features": {"0": {…}}`); each shape is decoded with a typed schema
built from the model's inputs, so no line is parsed by Python code. Rotated files
(`predictions.jsonl.1`, `.2`, … the oldest has the highest number) are read oldest first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from mlmake.ml.logfiles import log_files

NUMERIC = {"int", "float", "bool", "int64", "float64", "numeric"}


@dataclass(frozen=True)
class LogData:
    """The current model's rows: inputs, `_score` (probability or value), `_pid`, `_label` when fed back."""

    fingerprint: str
    rows: pl.DataFrame
    lines: int  # prediction lines of that fingerprint
    other: int  # prediction lines of other fingerprints, left out


def _lines(files: list[str]) -> pl.LazyFrame:
    frames = [pl.scan_csv(f, has_header=False, separator="\x1f", quote_char=None, schema={"line": pl.String})
              for f in files]
    return pl.concat(frames) if frames else pl.LazyFrame(schema={"line": pl.String})


def read(path: str, inputs: list[dict[str, Any]], window: int | None = None,
         fingerprint: str | None = None) -> LogData:
    """The rows scored by one fingerprint (the newest line's, unless given), the last `window` rows."""
    lines = _lines(log_files(path)).with_row_index("_line").with_columns(
        pl.col("line").str.starts_with('{"type":"prediction"').alias("_prediction"),
        pl.col("line").str.extract(r'"fingerprint":"([^"]*)"', 1).alias("fingerprint"))
    predictions = lines.filter(pl.col("_prediction"))
    counts = predictions.group_by("fingerprint").agg(pl.len().alias("n")).collect()
    if fingerprint is None:
        last = predictions.select(pl.col("fingerprint").last()).collect()
        fingerprint = str(last.item()) if last.height and last.item() is not None else ""
    mine = predictions.filter(pl.col("fingerprint") == fingerprint)
    n = int(counts.filter(pl.col("fingerprint") == fingerprint)["n"].sum()) if counts.height else 0
    rows = _rows(mine.select("_line", "line"), inputs).sort("_line", maintain_order=True)
    if window:
        rows = rows.tail(window)
    head = pl.Struct({"type": pl.String, "prediction_id": pl.String, "label": pl.String})
    feedback = lines.filter(~pl.col("_prediction") & (pl.col("fingerprint") == fingerprint)) \
        .select(pl.col("line").str.json_decode(head).alias("h")).unnest("h").filter(pl.col("type") == "feedback")
    labels = feedback.select(pl.col("prediction_id").alias("_pid"), pl.col("label").alias("_label")) \
        .unique("_pid", keep="last")
    joined = rows.join(labels, on="_pid", how="left", maintain_order="left").drop("_line").collect()
    return LogData(fingerprint, joined, n, int(counts["n"].sum()) - n if counts.height else 0)


def _rows(lines: pl.LazyFrame, inputs: list[dict[str, Any]]) -> pl.LazyFrame:
    """One row per scored row: its inputs, `_pid` and `_score`."""
    row = pl.Struct({i["name"]: _dtype(i) for i in inputs})
    response = pl.Struct({"prediction_id": pl.String, "probability": pl.Float64, "prediction": pl.String,
                          "prediction_ids": pl.List(pl.String), "probabilities": pl.List(pl.Float64),
                          "predictions": pl.List(pl.String)})
    parts = _split(lines)
    one = parts["one"].with_columns(
        pl.col("request").str.json_decode(row).alias("r"), pl.col("response").str.json_decode(response).alias("s"))
    one = one.select("_line", pl.col("r").struct.unnest(), pl.col("s").struct.field("prediction_id").alias("_pid"),
                     _score_one())
    batch = parts["rows"].with_columns(
        pl.col("request").str.json_decode(pl.Struct({"rows": pl.List(row)})).struct.field("rows").alias("r"),
        pl.col("response").str.json_decode(response).alias("s"))
    listed = parts["list"].with_columns(pl.col("request").str.json_decode(pl.List(row)).alias("r"),
                                        pl.col("response").str.json_decode(response).alias("s"))
    many = pl.concat([batch, listed]).select(
        "_line", "r", pl.col("s").struct.field("prediction_ids").alias("_pid"), _score_many())
    many = many.explode("r", "_pid", "_score").select("_line", pl.col("r").struct.unnest(), "_pid", "_score")
    return pl.concat([one, many], how="diagonal_relaxed")


def _split(lines: pl.LazyFrame) -> dict[str, pl.LazyFrame]:
    """The request and response of each line as text (split at the keys the log writes in a fixed
    order: no regular expression over the body), by the request's shape."""
    after = pl.col("line").str.splitn(',"request":', 2).struct.field("field_1")
    parts = after.str.splitn(',"response":', 2)
    answer = parts.struct.field("field_1").str.splitn(',"features":', 2)
    # without stored features, the response ends with the line's own closing brace
    response = pl.when(answer.struct.field("field_1").is_null()) \
        .then(answer.struct.field("field_0").str.strip_suffix("}")).otherwise(answer.struct.field("field_0"))
    text = lines.with_columns(
        parts.struct.field("field_0").alias("request"),
        response.alias("response"),
        pl.col("line").str.extract(r',"features":\{"0":(\{.*?\})\}\}$', 1).alias("stored"))
    text = text.with_columns(pl.coalesce("stored", "request").alias("request"))
    return {"one": text.filter(pl.col("request").str.starts_with("{") & ~pl.col("request").str.starts_with('{"rows":')),
            "rows": text.filter(pl.col("request").str.starts_with('{"rows":')),
            "list": text.filter(pl.col("request").str.starts_with("["))}


def _score_one() -> pl.Expr:
    s = pl.col("s")
    return pl.coalesce(s.struct.field("probability"), s.struct.field("prediction").cast(pl.Float64, strict=False)) \
        .alias("_score")


def _score_many() -> pl.Expr:
    s = pl.col("s")
    return pl.coalesce(s.struct.field("probabilities"),
                       s.struct.field("predictions").cast(pl.List(pl.Float64), strict=False)).alias("_score")


def _dtype(spec: dict[str, Any]) -> pl.DataType:
    return pl.Float64() if str(spec.get("type")) in NUMERIC and spec.get("categories") is None else pl.String()
