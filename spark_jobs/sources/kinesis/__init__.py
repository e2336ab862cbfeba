"""Kinesis input: our ``dredge-kinesis`` Python source, or a platform connector, one schema.

Public API::

    register(spark)                                   # makes format("dredge-kinesis") available
    read_kinesis(spark, options, kind="python")       # streaming DataFrame in SCHEMA
    source_options(cfg: SourceConfig, metadata_path)  # options dict from the typed config
    to_source_schema(df, kind)                        # platform columns -> SCHEMA (pure)

Options (any key case): ``streamName`` (comma-separated list allowed), ``region``,
``endpointUrl``, ``roleArn``, ``startingPosition`` (TRIM_HORIZON | LATEST |
AT_TIMESTAMP:<ISO-8601>), ``maxRecordsPerBatch``, ``maxBytesPerBatch``, ``metadataPath``
(python kind only, required: a durable folder of this query, e.g.
``<checkpointLocation>/sources/kinesis``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spark_jobs.sources.kinesis.adapters import (
    DATABRICKS_COLUMNS,
    EMR_COLUMNS,
    read_kinesis,
    register,
    source_options,
    to_source_schema,
)
from spark_jobs.sources.kinesis.options import KinesisOptionError

if TYPE_CHECKING:
    from spark_jobs.sources.kinesis.datasource import NAME, SCHEMA_DDL, KinesisDataSource

# The data source needs PySpark >= 4.2's streaming data source API; importing the package on
# Spark 4.0 (kind emr / databricks) must not load it, so its names resolve on first use.
_LAZY = frozenset(("NAME", "SCHEMA_DDL", "KinesisDataSource"))


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from spark_jobs.sources.kinesis import datasource

        return getattr(datasource, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DATABRICKS_COLUMNS",
    "EMR_COLUMNS",
    "NAME",
    "SCHEMA_DDL",
    "KinesisDataSource",
    "KinesisOptionError",
    "read_kinesis",
    "register",
    "source_options",
    "to_source_schema",
]
