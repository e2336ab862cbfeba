"""The I/O seam: one Kinesis DataFrame schema whatever the platform connector.

Column names of the platform connectors (their documented schemas):
- Databricks ``format("kinesis")``: partitionKey, data, stream, shardId, sequenceNumber,
  approximateArrivalTimestamp.
- AWS EMR ``format("aws-kinesis")`` (awslabs/spark-sql-kinesis-connector): data, streamName,
  partitionKey, sequenceNumber, approximateArrivalTimestamp (no shard id: null here).

This module must stay importable on Spark 4.0 (EMR's aws-kinesis connector, some Databricks
runtimes), where the Python streaming data source API of ``datasource.py`` does not exist:
``datasource`` is imported only on the ``python`` path.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.config import SourceConfig

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


def register(spark: SparkSession) -> None:
    """Register ``dredge-kinesis`` with ``spark`` (idempotent). Needs PySpark >= 4.2."""
    from spark_jobs.sources.kinesis.datasource import KinesisDataSource

    spark.dataSource.register(KinesisDataSource)


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


def _platform_options(options: Mapping[str, str], kind: str) -> dict[str, str]:
    opts = {k.lower(): v for k, v in options.items()}
    position = opts.get("startingposition", "TRIM_HORIZON")
    if kind == "emr":
        out = {
            "kinesis.streamName": opts["streamname"],
            "kinesis.region": opts.get("region", ""),
            "kinesis.startingPosition": position.replace("AT_TIMESTAMP:", "AT_TIMESTAMP "),
        }
        if opts.get("endpointurl"):
            out["kinesis.endpointUrl"] = opts["endpointurl"]
        if opts.get("rolearn"):
            out["kinesis.stsRoleArn"] = opts["rolearn"]
        return out
    out = {"streamName": opts["streamname"], "region": opts.get("region", "")}
    out["initialPosition"] = position.lower() if ":" not in position else position
    if opts.get("endpointurl"):
        out["endpoint"] = opts["endpointurl"]
    if opts.get("rolearn"):
        out["roleArn"] = opts["rolearn"]
    return out


def read_kinesis(
    spark: SparkSession, options: Mapping[str, str], kind: str = "python"
) -> DataFrame:
    """A streaming DataFrame of Kinesis records in the Dredge schema.

    Args:
        spark: the session.
        options: ``dredge-kinesis`` options (see the package docstring); for ``databricks`` and
            ``emr`` the connection options are translated to the platform connector's names.
        kind: ``python`` (ours), ``databricks`` (``format("kinesis")``) or ``emr``
            (``format("aws-kinesis")``). Only ``python`` imports our data source.
    """
    if kind == "python":
        from spark_jobs.sources.kinesis.datasource import NAME

        register(spark)
        return spark.readStream.format(NAME).options(**dict(options)).load()
    if kind not in _FORMATS:
        raise ValueError(f"source kind: expected python, databricks or emr, got {kind!r}")
    raw = spark.readStream.format(_FORMATS[kind]).options(**_platform_options(options, kind))
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
