"""The I/O seam: one Kinesis DataFrame schema whatever the platform connector.

Column names of the platform connectors, verified against their documentation:
- Databricks ``format("kinesis")``: partitionKey, data, stream, shardId, sequenceNumber,
  approximateArrivalTimestamp (the "Schema" table of
  https://docs.databricks.com/aws/en/connect/streaming/kinesis/).
- AWS EMR ``format("aws-kinesis")``: data, streamName, partitionKey, sequenceNumber,
  approximateArrivalTimestamp, no shard id (null here) (awslabs/spark-sql-kinesis-connector
  README.md, "Check Schema").

This module must stay importable on Spark 4.0 (EMR's aws-kinesis connector, some Databricks
runtimes), where the Python streaming data source API of ``datasource.py`` does not exist:
``datasource`` is imported only on the ``python`` path.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.config import SourceConfig

LOG = logging.getLogger(__name__)
OUTPUT_TYPES = {
    "stream_name": "string",
    "shard_id": "string",
    "sequence_number": "string",
    "partition_key": "string",
    "approximate_arrival_timestamp": "timestamp",
    "data": "binary",
}
DATABRICKS_COLUMNS = {
    "stream": "stream_name",
    "shardId": "shard_id",
    "sequenceNumber": "sequence_number",
    "partitionKey": "partition_key",
    "approximateArrivalTimestamp": "approximate_arrival_timestamp",
    "data": "data",
}
EMR_COLUMNS = {
    "streamName": "stream_name",
    "sequenceNumber": "sequence_number",
    "partitionKey": "partition_key",
    "approximateArrivalTimestamp": "approximate_arrival_timestamp",
    "data": "data",
}
_FORMATS = {"databricks": "kinesis", "emr": "aws-kinesis"}
# Our option keys (lower-cased); every other key is a platform option, passed through as is.
OUR_OPTIONS = frozenset(
    (
        "streamname",
        "region",
        "endpointurl",
        "rolearn",
        "startingposition",
        "maxrecordsperbatch",
        "maxbytesperbatch",
        "metadatapath",
    )
)
# The aws-kinesis connector requires both of these together (KinesisOptions.scala).
EMR_STS_SESSION_NAME = "dredge"
# Neither connector has a per-batch total: Databricks' maxRecordsPerFetch is per GetRecords
# call ("How many records to be read per API request", docs.databricks.com Kinesis options);
# EMR's kinesis.maxFetchRecordsPerShard is per shard per micro-batch (awslabs README, "Kinesis
# Source Configuration"). Translating a per-batch total into either would change its meaning,
# so the budget is not mapped; set the platform option through ``source.options`` instead.
_BATCH_BUDGET_HINT = {
    "databricks": "maxRecordsPerFetch / maxFetchDuration / fetchBufferSize",
    "emr": "kinesis.maxFetchRecordsPerShard / kinesis.maxFetchTimePerShardSec",
}


_REGISTERED: weakref.WeakSet[SparkSession] = weakref.WeakSet()


def register(spark: SparkSession) -> None:
    """Register ``dredge-kinesis`` with ``spark``, once per session (Spark warns each time a
    source is registered again: a second stream in one driver would). Needs PySpark >= 4.2."""
    if spark in _REGISTERED:
        return
    from spark_jobs.sources.kinesis.datasource import KinesisDataSource

    spark.dataSource.register(KinesisDataSource)
    _REGISTERED.add(spark)


def to_source_schema(df: DataFrame, kind: str) -> DataFrame:
    """Rename a platform connector's columns to the Dredge Kinesis schema.

    Needs the columns of ``DATABRICKS_COLUMNS`` / ``EMR_COLUMNS`` (by ``kind``); returns exactly
    stream_name, shard_id, sequence_number, partition_key, approximate_arrival_timestamp, data.
    """
    mapping = {"databricks": DATABRICKS_COLUMNS, "emr": EMR_COLUMNS}[kind]
    by_target = {target: source for source, target in mapping.items()}
    cols: list[Column] = []
    for name, dtype in OUTPUT_TYPES.items():
        source = by_target.get(name)
        value = F.col(source) if source else F.lit(None)
        cols.append(value.cast(dtype).alias(name))
    return df.select(*cols)


def _emr_options(opts: Mapping[str, str]) -> dict[str, str]:
    """Option names of awslabs/spark-sql-kinesis-connector (KinesisOptions.scala, README)."""
    region = opts.get("region", "")
    position = opts.get("startingposition", "TRIM_HORIZON")
    if "," in opts["streamname"]:
        raise ValueError("source kind emr: aws-kinesis reads one stream per query")
    out = {
        "kinesis.streamName": opts["streamname"],
        # Required by the connector (no default); the region is inferred from it otherwise.
        "kinesis.endpointUrl": opts.get("endpointurl") or f"https://kinesis.{region}.amazonaws.com",
        "kinesis.startingPosition": position.replace("AT_TIMESTAMP:", "AT_TIMESTAMP ", 1),
    }
    if region:
        out["kinesis.region"] = region
    if opts.get("rolearn"):
        out["kinesis.stsRoleArn"] = opts["rolearn"]
        out["kinesis.stsSessionName"] = EMR_STS_SESSION_NAME
    return out


def _databricks_options(opts: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """Option names of Databricks ``format("kinesis")`` (docs.databricks.com Kinesis page)."""
    position = opts.get("startingposition", "TRIM_HORIZON")
    out = {"streamName": opts["streamname"]}
    if opts.get("region"):
        out["region"] = opts["region"]
    if position.upper().startswith("AT_TIMESTAMP"):
        # Databricks takes a JSON document here; we do not translate it (unverified format).
        if not any(k.lower() == "initialposition" for k in extra):
            raise ValueError(
                "source kind databricks: AT_TIMESTAMP is not translated; set "
                "source.options.initialPosition in Databricks' own format"
            )
    else:
        out["initialPosition"] = position.lower()
    if opts.get("endpointurl"):
        out["endpoint"] = opts["endpointurl"]
    if opts.get("rolearn"):
        out["roleArn"] = opts["rolearn"]
    return out


def platform_options(options: Mapping[str, str], kind: str) -> dict[str, str]:
    """``dredge-kinesis`` options -> the ``databricks`` / ``emr`` connector's options.

    Our keys (``OUR_OPTIONS``, any case) are translated; every other key is a platform option
    (e.g. ``kinesis.consumerType``, ``maxFetchDuration``) and is passed through unchanged,
    winning over a translated key of the same name.
    """
    ours = {k.lower(): v for k, v in options.items() if k.lower() in OUR_OPTIONS}
    extra = {k: v for k, v in options.items() if k.lower() not in OUR_OPTIONS}
    if kind == "emr":
        out = _emr_options(ours)
    elif kind == "databricks":
        out = _databricks_options(ours, extra)
    else:
        raise ValueError(f"source kind: expected databricks or emr, got {kind!r}")
    budgets = [k for k in ("maxrecordsperbatch", "maxbytesperbatch") if k in ours]
    if budgets:
        LOG.warning(
            "source kind %s: %s not applied (no per-batch equivalent); use %s in source.options",
            kind,
            ", ".join(budgets),
            _BATCH_BUDGET_HINT[kind],
        )
    overridden = {k.lower() for k in extra}
    out = {k: v for k, v in out.items() if k.lower() not in overridden}
    out.update(extra)
    return out


def read_kinesis(
    spark: SparkSession, options: Mapping[str, str], kind: str = "python"
) -> DataFrame:
    """A streaming DataFrame of Kinesis records in the Dredge schema.

    Args:
        spark: the session.
        options: ``dredge-kinesis`` options (see the package docstring); for ``databricks`` and
            ``emr`` they are translated by :func:`platform_options` (other keys pass through).
        kind: ``python`` (ours), ``databricks`` (``format("kinesis")``) or ``emr``
            (``format("aws-kinesis")``). Only ``python`` imports our data source.
    """
    if kind == "python":
        from spark_jobs.sources.kinesis.datasource import NAME

        register(spark)
        return spark.readStream.format(NAME).options(**dict(options)).load()
    if kind not in _FORMATS:
        raise ValueError(f"source kind: expected python, databricks or emr, got {kind!r}")
    raw = spark.readStream.format(_FORMATS[kind]).options(**platform_options(options, kind))
    return to_source_schema(raw.load(), kind)


def source_options(cfg: SourceConfig, metadata_path: str) -> dict[str, str]:
    """``dredge-kinesis`` options from the typed source config (plus ``cfg.options``)."""
    out = {
        "streamName": ",".join(cfg.stream_names),
        "region": cfg.region,
        "startingPosition": cfg.starting_position,
        "metadataPath": metadata_path,
    }
    if cfg.endpoint_url:
        out["endpointUrl"] = cfg.endpoint_url
    if cfg.role_arn:
        out["roleArn"] = cfg.role_arn
    if cfg.max_records_per_batch:
        out["maxRecordsPerBatch"] = str(cfg.max_records_per_batch)
    if cfg.max_bytes_per_batch:
        out["maxBytesPerBatch"] = str(cfg.max_bytes_per_batch)
    out.update(cfg.options)
    return out
