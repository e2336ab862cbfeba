"""The Druid supervisor spec against the Kafka message contract, the spec filler, the demo's
known input, and the side-by-side comparison (no Spark session, no Druid)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from spark_jobs.druid import demo_data
from spark_jobs.druid.aggregates import app_pair_rows, region_minute_rows
from spark_jobs.druid.compare import Comparison, side_by_side
from spark_jobs.druid.spec import load_template, supervisor_spec
from spark_jobs.transforms.output import KAFKA_DIMENSIONS, KAFKA_METRICS

SIDE_FIELDS = ("attribution_status", "app", "cluster", "account", "region", "az", "vpc", "kind")


def _dimension_names(spec):
    dims = spec["spec"]["dataSchema"]["dimensionsSpec"]["dimensions"]
    return [d if isinstance(d, str) else d["name"] for d in dims]


def test_spec_reads_the_dimensions_and_metrics_the_kafka_messages_carry():
    spec = load_template()
    schema = spec["spec"]["dataSchema"]
    names = _dimension_names(spec)
    # the messages are rolled up on exactly Druid's dimensions: one more would split Druid's
    # rows for nothing, one fewer would merge what Druid keeps apart
    assert sorted(names) == sorted(KAFKA_DIMENSIONS) and len(names) == len(set(names))
    for side in ("src", "dst"):
        for field in (*SIDE_FIELDS, "label"):
            assert f"{side}_{field}" in names
    assert {"protocol", "action", "cross_region", "cross_az"} <= set(names)
    assert "is_duplicate_view" not in names and "flow_id" not in names  # rollup-killers
    assert schema["timestampSpec"] == {"column": "timestamp", "format": "millis"}
    metrics = {m["name"]: (m["type"], m.get("fieldName")) for m in schema["metricsSpec"]}
    assert set(KAFKA_METRICS) <= set(metrics)
    assert metrics == {
        "messages": ("count", None),
        "flows": ("longSum", "flows"),
        "bytes": ("longSum", "bytes"),
        "packets": ("longSum", "packets"),
    }
    gran = schema["granularitySpec"]
    assert (gran["queryGranularity"], gran["segmentGranularity"], gran["rollup"]) == (
        "MINUTE",
        "HOUR",
        True,
    )
    assert "transformSpec" not in schema  # duplicate views are never sent
    io = spec["spec"]["ioConfig"]
    assert io["useEarliestOffset"] is True
    assert io["consumerProperties"]["isolation.level"] == "read_committed"
    assert io["lateMessageRejectionPeriod"] == "PT3H"


def test_supervisor_spec_fills_placeholders_and_keeps_read_committed():
    template = load_template()
    spec = supervisor_spec(
        template,
        "broker-1:9092,broker-2:9092",
        "flows.topic",
        data_source="flows_ds",
        kafka_options={"isolation.level": "read_uncommitted", "security.protocol": "SSL"},
    )
    io = spec["spec"]["ioConfig"]
    assert io["topic"] == "flows.topic"
    assert io["consumerProperties"] == {
        "bootstrap.servers": "broker-1:9092,broker-2:9092",
        "isolation.level": "read_committed",
        "security.protocol": "SSL",
    }
    assert spec["spec"]["dataSchema"]["dataSource"] == "flows_ds"
    assert template["spec"]["ioConfig"]["topic"] == "@KAFKA_TOPIC@"  # template untouched
    with pytest.raises(ValueError, match=r"ioConfig\.topic"):
        supervisor_spec(spec, "b:9092", "t")  # already filled: not a template


def test_demo_input_has_known_counts():
    base = datetime(2026, 1, 1, tzinfo=UTC)
    lines = [m for ls in demo_data.flow_lines(base).values() for m in ls]
    nodata = [m for m in lines if m.endswith("NODATA")]
    # 8 pairs x 12 minutes, one in three skipped; duplicate views every other minute
    assert (len(lines), len(nodata)) == (81, 1)
    tuples = [tuple(m.split()[3:11]) for m in lines if m not in nodata]
    assert len(set(tuples)) == 64  # each duplicate view repeats its source view's 5-tuple
    records = demo_data.kinesis_records(base)
    assert len(records) == len({r["PartitionKey"] for r in records}) == 5


def test_rows_sort_nulls_first_and_comparison_marks_differences():
    druid = region_minute_rows(
        [
            {"minute_ms": 60_000, "src_region": "b", "dst_region": "x", "flows": 1,
             "packets": 2, "bytes": 3},
            {"minute_ms": 60_000, "src_region": None, "dst_region": "x", "flows": 1,
             "packets": 1, "bytes": 1},
        ]
    )  # fmt: skip
    assert [r[1] for r in druid] == [None, "b"]
    spark = [druid[0], (60_000, "b", "x", 1, 2, 4)]
    cmp = Comparison(
        "t", ("minute_ms", "src_region", "dst_region", "f", "p", "bytes"), druid, spark
    )
    assert not cmp.is_equal
    assert cmp.differences() == [
        "only in Druid: (60000, 'b', 'x', 1, 2, 3)",
        "only in Spark: (60000, 'b', 'x', 1, 2, 4)",
    ]
    text = side_by_side(cmp)
    assert "DIFFERENT" in text and "1970-01-01 00:01 null x 1 1 1" in text
    assert [ln[0] for ln in text.splitlines()[3:]] == [" ", "!"]
    pairs = app_pair_rows([{"src_app": "a", "dst_app": None, "flows": 2, "bytes": None}])
    assert pairs == [("a", None, 2, 0)]
