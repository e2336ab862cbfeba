"""A batch writer over a tiny file input (two final flows, one quarantined line), for tests
of the batch writer itself (shared by several test modules)."""

from __future__ import annotations

import gzip
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from spark_jobs import config
from spark_jobs.jobs.enrich_flows import _prepare, targets_for, text_file_stage
from spark_jobs.sinks import delta
from spark_jobs.sinks.flow_batch import BatchTargets, FlowBatchWriter
from spark_jobs.sources.files import read_flow_log_text
from spark_jobs.sources.ownership import FRESHNESS_PROPERTY
from spark_jobs.transforms.ownership import CIDR_LABEL_SCHEMA, OWNERSHIP_SCHEMA

HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status"
)
LINES = [  # two flows (no owner: unattributed, final) and one bad port (quarantined)
    "2 123456789010 eni-1 198.51.100.1 198.51.100.2 20641 22 6 20 4249 1418530010 1418530070 "
    "ACCEPT OK",
    "2 123456789010 eni-1 198.51.100.3 198.51.100.4 20642 22 6 20 1000 1418530010 1418530070 "
    "ACCEPT OK",
    "2 123456789010 eni-1 198.51.100.5 198.51.100.6 49761 99999 6 20 4249 1418530010 "
    "1418530070 REJECT OK",
]


def writer_and_lines(
    spark: SparkSession, tmp_path: Path
) -> tuple[FlowBatchWriter, BatchTargets, DataFrame]:
    """A writer (Kafka off) with empty ownership/label tables, its targets, and the lines."""
    root = tmp_path / "root"
    cfg = config.from_dict({"kafka": {"enabled": False}, "paths": {"root": str(root)}})
    targets = targets_for(cfg, "replay")
    delta.ensure_table(spark, targets.ownership, OWNERSHIP_SCHEMA)
    spark.sql(
        f"ALTER TABLE delta.`{targets.ownership}` "
        f"SET TBLPROPERTIES ('{FRESHNESS_PROPERTY}' = '2015-01-01T00:00:00Z')"
    )
    delta.ensure_table(spark, targets.cidr_labels, CIDR_LABEL_SCHEMA)
    _prepare(spark, cfg)
    logs = tmp_path / "logs" / "a.log.gz"
    logs.parent.mkdir(parents=True)
    logs.write_bytes(gzip.compress(("\n".join([HEADER, *LINES]) + "\n").encode()))
    lines = read_flow_log_text(spark, str(logs.parent))
    return FlowBatchWriter(text_file_stage(), targets), targets, lines
