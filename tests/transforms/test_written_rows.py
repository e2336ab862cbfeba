"""The rows one batch's Delta commit wrote, read back from exactly the files that commit added
(found by its marker in the log, no Spark job): what the Kafka messages are built from, so
both sinks share one attribution."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from py4j.protocol import Py4JError
from pyspark.sql import SparkSession
from pyspark.sql.types import LongType, StringType, StructField, StructType
from spark_probe import spark_jobs_run_by

from spark_jobs import delta_log
from spark_jobs.sinks import delta

SCHEMA = "id long, name string, part string"
DATA = StructType([StructField("id", LongType()), StructField("name", StringType())])


def _write(spark: SparkSession, path: str, rows: list[tuple], batch: int, app: str = "a") -> None:
    df = spark.createDataFrame(rows, SCHEMA)
    since = delta.table_version(spark, path, missing=-1)
    delta.write_batch(
        df, path, app_id=app, batch_id=batch, partition_by=("part",), since=since,
        first_attempt=True,
    )  # fmt: skip


def _rows(spark: SparkSession, path: str, batch: int, since: int, app: str = "a") -> list[tuple]:
    df = delta.written_rows(spark, path, DATA, app_id=app, batch_id=batch, since=since)
    assert df is not None
    return sorted((r.id, r.name) for r in df.collect())


def test_only_the_rows_of_the_marked_commit(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    # partition values that the log URI-encodes (a space, a slash, a non-ASCII letter)
    _write(spark, path, [(1, "x", "a b"), (2, "y", "c/d")], batch=0)
    _write(spark, path, [(3, "z", "a b"), (4, "w", "é"), (5, "v", "c/d")], batch=1)
    _write(spark, path, [(6, "u", "a b")], batch=0, app="other")  # same batch id, other app
    _write(spark, path, [(7, "t", "a b")], batch=2)
    assert _rows(spark, path, batch=1, since=0) == [(3, "z"), (4, "w"), (5, "v")]
    assert _rows(spark, path, batch=0, since=-1) == [(1, "x"), (2, "y")]
    assert _rows(spark, path, batch=0, since=1, app="other") == [(6, "u")]
    assert _rows(spark, path, batch=2, since=0) == [(7, "t")]  # found past other commits


def test_listing_the_files_runs_no_spark_job(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    _write(spark, path, [(1, "x", "p"), (2, "y", "q")], batch=0)
    marker = delta.batch_marker("a", 0)
    files, jobs = spark_jobs_run_by(spark, lambda: delta_log.commit_files(spark, path, -1, marker))
    assert jobs == 0
    assert files is not None and len(files) == 2
    assert all(Path(f).is_file() and f.startswith(path) for f in files)


def test_an_empty_write_commits_nothing_to_find(spark: SparkSession, tmp_path: Path) -> None:
    """Delta skips an empty append: no commit, no marker (the batch writer publishes nothing
    for a batch without final flows and never looks)."""
    path = str(tmp_path / "t")
    _write(spark, path, [(1, "x", "p")], batch=0)
    _write(spark, path, [], batch=1)
    assert delta.table_version(spark, path) == 0
    with pytest.raises(LookupError):
        delta.written_rows(spark, path, DATA, app_id="a", batch_id=1, since=0)


def test_no_commit_with_the_marker_is_an_error(spark: SparkSession, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    _write(spark, path, [(1, "x", "p")], batch=0)
    with pytest.raises(LookupError, match=r"after version -1 carries .*\"batch\": 5"):
        delta.written_rows(spark, path, DATA, app_id="a", batch_id=5, since=-1)
    with pytest.raises(LookupError):  # the batch's commit is not after ``since``
        delta.written_rows(spark, path, DATA, app_id="a", batch_id=0, since=0)


def test_none_where_the_files_cannot_be_read_as_they_are(
    spark: SparkSession, tmp_path: Path, monkeypatch, caplog
) -> None:
    mapped = str(tmp_path / "mapped")
    spark.sql(
        f"CREATE TABLE delta.`{mapped}` (id long, name string, part string) USING delta "
        "PARTITIONED BY (part) TBLPROPERTIES ('delta.columnMapping.mode' = 'name', 'delta.minReaderVersion' = '2', "
        "'delta.minWriterVersion' = '5')"
    )
    _write(spark, mapped, [(1, "x", "p")], batch=0)
    assert delta.written_rows(spark, mapped, DATA, app_id="a", batch_id=0, since=0) is None

    plain = str(tmp_path / "plain")
    _write(spark, plain, [(1, "x", "p")], batch=0)

    def renamed(spark_: SparkSession, path_: str, since_: int):
        raise Py4JError("Method getChanges([...]) does not exist")  # another Delta build

    monkeypatch.setattr(delta_log, "_commits_after", renamed)
    monkeypatch.setattr(delta_log, "_FALLBACK_WARNED", [])
    with caplog.at_level(logging.WARNING, logger="dredge.delta"):
        for _ in range(2):
            assert delta.written_rows(spark, plain, DATA, app_id="a", batch_id=0, since=-1) is None
    warned = [r.getMessage() for r in caplog.records if "DeltaLog API" in r.getMessage()]
    assert len(warned) == 1 and "Kafka messages are computed from the batch's" in warned[0]


def test_a_file_path_in_the_log_becomes_one_spark_reads() -> None:
    assert delta_log._absolute("/t/", "p=a%20b/x.parquet") == "/t/p=a b/x.parquet"
    assert delta_log._absolute("s3://b/t", "p=c%252Fd/x.parquet") == "s3://b/t/p=c%2Fd/x.parquet"
    assert delta_log._absolute("/t", "s3://other/x.parquet") == "s3://other/x.parquet"
    assert delta_log._absolute("/t", "file:/elsewhere/x.parquet") == "file:/elsewhere/x.parquet"


def test_a_small_batch_rolls_its_messages_up_without_a_shuffle(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch writer hands ``publish_batch`` per-minute messages built from the rows its
    enriched commit wrote; a batch small enough for one publishing task aggregates them in
    that one partition (no exchange in the plan)."""
    import dataclasses
    import json

    from batch_writer_kit import writer_and_lines

    from spark_jobs.sinks import flow_batch

    handed: list = []

    def publish(messages, batch_id, **kwargs):  # the broker is another tier's
        handed.append((messages, batch_id, kwargs["rows"]))
        return messages.count(), 0

    monkeypatch.setattr(flow_batch, "publish_batch", publish)
    writer, targets, lines = writer_and_lines(spark, tmp_path)
    writer.targets = dataclasses.replace(targets, kafka_bootstrap="unused:9092", kafka_topic="t")
    try:
        writer(lines, 0)
    finally:
        writer.close()
    [(messages, batch_id, rows)] = handed
    plan = messages._jdf.queryExecution().executedPlan().toString()
    assert "Exchange" not in plan, plan
    values = [json.loads(r.value) for r in messages.collect()]
    assert (batch_id, rows, len(values)) == (0, 2, 1)  # 2 final flows, in one group
    assert (values[0]["flows"], values[0]["bytes"], values[0]["batch"]) == (2, 5249, 0)
