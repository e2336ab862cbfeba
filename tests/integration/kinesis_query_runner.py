"""Runs one dredge-kinesis query into a Delta table in its own process (so a test can kill -9 it).

Usage: python kinesis_query_runner.py <options-json> <checkpoint> <delta-path> <mode>
mode: ``slow`` (processing-time trigger, each Arrow batch held 1 s so a batch is easy to
interrupt) or ``available_now``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator

import pyarrow as pa

from spark_jobs.config import SparkConfig
from spark_jobs.session import build_session
from spark_jobs.sources.kinesis import read_kinesis


def _hold(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        time.sleep(1.0)
        yield batch


def main(argv: list[str]) -> None:
    options, checkpoint, table, mode = json.loads(argv[0]), argv[1], argv[2], argv[3]
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = build_session(
        SparkConfig(master="local[2]", shuffle_partitions=1, conf={"spark.driver.memory": "1g"})
    )
    df = read_kinesis(spark, options)
    writer = df.writeStream.format("delta").option("checkpointLocation", checkpoint)
    if mode == "slow":
        df = df.mapInArrow(_hold, df.schema)
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
