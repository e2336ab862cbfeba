"""Runs one dredge-kinesis query into a Delta table in its own process (so a test can kill -9 it).

Usage: python kinesis_query_runner.py <options-json> <checkpoint> <delta-path> <mode>
mode: ``hold`` (processing-time trigger; the first batch commits, every later one is held
after its reads, uncommitted, until the driver is killed) or ``available_now``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from spark_jobs.config import SparkConfig
from spark_jobs.session import build_session
from spark_jobs.sources.kinesis import read_kinesis

HOLD_S = 300.0  # a held batch fails after this, so a driver nobody killed still exits


def _hold_after_first(
    checkpoint: str,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """A mapInArrow function that passes the first batch's rows and holds every later batch's:
    the test kills the driver while a batch is planned and read but cannot commit."""
    commits = Path(checkpoint) / "commits"

    def hold(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if any(commits.glob("[0-9]*")):
                time.sleep(HOLD_S)  # held until the test kills this process
                raise RuntimeError(
                    f"batch still held after {HOLD_S:.0f} s: nobody killed the driver"
                )
            yield batch

    return hold


def main(argv: list[str]) -> None:
    options, checkpoint, table, mode = json.loads(argv[0]), argv[1], argv[2], argv[3]
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = build_session(
        SparkConfig(master="local[2]", shuffle_partitions=1, conf={"spark.driver.memory": "1g"})
    )
    df = read_kinesis(spark, options)
    writer = df.writeStream.format("delta").option("checkpointLocation", checkpoint)
    if mode == "hold":
        df = df.mapInArrow(_hold_after_first(checkpoint), df.schema)
        writer = df.writeStream.format("delta").option("checkpointLocation", checkpoint)
        query = writer.trigger(processingTime="200 milliseconds").start(table)
    else:
        # A restart may change the admission limit: the replayed batch still comes from the logs.
        options.pop("maxRecordsPerBatch", None)
        df = read_kinesis(spark, options)
        writer = df.writeStream.format("delta").option("checkpointLocation", checkpoint)
        query = writer.trigger(availableNow=True).start(table)
    query.awaitTermination()
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
