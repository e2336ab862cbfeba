"""Data-quality suites: every check passes on a good literal table and fails, with the
expected observed values, on a deliberately broken one; plus ``dredge dq`` on Delta."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from enriched_sample import T0, enriched_df, flow
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_jobs.quality import checks
from spark_jobs.quality.runner import Validation, validate_sample, validate_table
from spark_jobs.schemas import ADDRESS_COLUMNS, PARSED_FLOW_SCHEMA, QUARANTINE_SCHEMA
from spark_jobs.transforms.ip import ip_key_py, to_ip_key
from spark_jobs.transforms.ownership import OWNERSHIP_SCHEMA

ROOT = Path(__file__).resolve().parents[2]


def _nodata(n: int) -> dict[str, Any]:
    """A NODATA row: no addresses, ports, action; both sides unattributed."""
    nulls = {c: None for c in ("srcaddr", "dstaddr", "srcport", "dstport", "protocol",
                               "packets", "bytes", "action")}  # fmt: skip
    return flow(n, None, None, log_status="NODATA", is_traffic=False, **nulls)


def _good_flows() -> list[dict[str, Any]]:
    return [flow(1), flow(2, "checkout", "search"), flow(3, "search", None), _nodata(4)]


def _assert_only(result: Validation, failing: set[str]) -> None:
    assert set(result.failed) == failing, result.summary()


# ---- pure checks (no GX) ------------------------------------------------------------------


def test_overlap_flags_mark_the_later_of_overlapping_intervals(spark: SparkSession) -> None:
    t = [T0 + timedelta(hours=h) for h in range(6)]
    rows = [
        ("192.0.2.1", t[0], t[2]), ("192.0.2.1", t[2], t[3]), ("192.0.2.1", t[3], None),  # chain
        ("192.0.2.2", t[0], t[4]), ("192.0.2.2", t[1], t[2]),  # nested
        ("192.0.2.3", t[0], None), ("192.0.2.3", t[5], None),  # two open intervals
        ("192.0.2.4", t[0], t[1]), ("192.0.2.4", t[0], t[1]),  # duplicate
        ("192.0.2.5", t[1], t[1]), ("192.0.2.5", t[1], t[2]),  # empty interval overlaps nothing
    ]  # fmt: skip
    df = spark.createDataFrame(
        [(ip, ip_key_py(ip), a, b) for ip, a, b in rows],
        "ip string, ip_key string, valid_from timestamp, valid_to timestamp",
    )
    flagged = df.transform(checks.with_overlap_flags).where(F.col("overlapping_ip").isNotNull())
    got = sorted((r.ip, r.valid_from) for r in flagged.collect())
    assert got == [("192.0.2.2", t[1]), ("192.0.2.3", t[5]), ("192.0.2.4", t[0])]


def test_address_checks_name_the_bad_columns(spark: SparkSession) -> None:
    df = enriched_df(
        spark,
        [
            flow(1),
            flow(2, srcaddr="999.1.1.1"),
            flow(3, dstaddr="XYZ", pkt_srcaddr="192.0.2.999"),
            _nodata(4),
        ],
    )
    got = {r.flow_id: r.bad_address for r in df.transform(checks.with_address_checks).collect()}
    assert got == {
        "flow-0001": None,
        "flow-0002": "srcaddr",
        "flow-0003": "dstaddr,pkt_srcaddr",
        "flow-0004": None,
    }


def test_attributed_share_counts_sides_of_traffic_rows(spark: SparkSession) -> None:
    df = enriched_df(spark, [flow(1), flow(2, "checkout", None), flow(3, None, None), _nodata(4)])
    got = {r.flow_id: r.attributed_side_share for r in df.transform(checks.with_attributed_share).collect()}  # fmt: skip
    assert got == {"flow-0001": 1.0, "flow-0002": 0.5, "flow-0003": 0.0, "flow-0004": None}


def test_cross_region_check_flags_a_flag_that_disagrees_with_the_regions(
    spark: SparkSession,
) -> None:
    df = enriched_df(spark, [
        flow(1),  # both us-east-1, cross_region False
        flow(2, "checkout", "search"),  # us-east-1 -> eu-west-1, True
        flow(3, "checkout", "search", cross_region=False),
        flow(4, "checkout", "payments", cross_region=True),
        flow(5, "checkout", "payments", cross_region=None),  # both known: must be set
        flow(6, "checkout", None),  # dst region unknown, cross_region null
        flow(7, None, "search", cross_region=False),  # src region unknown: must be null
        _nodata(8),
    ])  # fmt: skip
    got = {r.flow_id: r.cross_region_mismatch for r in df.transform(checks.with_cross_region_check).collect()}  # fmt: skip
    assert got == {
        "flow-0001": None,
        "flow-0002": None,
        "flow-0003": "us-east-1->eu-west-1 cross_region=false",
        "flow-0004": "us-east-1->us-east-1 cross_region=true",
        "flow-0005": "us-east-1->us-east-1 cross_region=null",
        "flow-0006": None,
        "flow-0007": "null->eu-west-1 cross_region=false",
        "flow-0008": None,
    }


def _truth(spark: SparkSession, rows: list[dict[str, Any]]) -> DataFrame:
    """Simulator-shaped ground truth saying what each enriched row says (edit to disagree)."""
    out = []
    for r in rows:
        out.append(
            (None, r["interface_id"], int(r["start_time"].timestamp()), r["srcport"],
             r["dstport"], r["protocol"], r["srcaddr"], r["dstaddr"], r.get("src_app"), r.get("dst_app"))
        )  # fmt: skip
    schema = (
        "malformed_reason string, interface_id string, start long, srcport int, dstport int, "
        "protocol int, srcaddr string, dstaddr string, src_app string, dst_app string"
    )
    return checks.to_truth_sides(spark.createDataFrame(out, schema))


def test_truth_mismatch_flags_only_wrong_attributed_sides(spark: SparkSession) -> None:
    rows = [flow(1), flow(2), flow(3, "checkout", None), flow(4)]
    truth_rows = [dict(r) for r in rows]
    truth_rows[1]["dst_app"] = "search"  # we said payments: misattributed
    truth_rows[2]["dst_app"] = "payments"  # we said unattributed: acceptable
    truth_rows = truth_rows[:3]  # flow 4 has no truth row
    got = checks.with_truth_mismatch(enriched_df(spark, rows), _truth(spark, truth_rows))
    assert {r.flow_id: r.misattribution for r in got.collect()} == {
        "flow-0001": None,
        "flow-0002": "dst:payments!=search",
        "flow-0003": None,
        "flow-0004": None,
    }


# ---- suites through GX --------------------------------------------------------------------


def _parsed(df: DataFrame) -> DataFrame:
    """Enriched sample rows -> parsed rows: the same fields plus the address keys."""
    keys = [to_ip_key(F.col(c)).alias(f"{c}_key") for c in ADDRESS_COLUMNS]
    return df.select("*", *keys).select(*PARSED_FLOW_SCHEMA.names)


def test_parsed_suite_passes_on_good_flows(spark: SparkSession) -> None:
    result = validate_table("parsed", _parsed(enriched_df(spark, _good_flows())))
    assert result.success, result.summary()
    assert result.outcome("srcport_range").unexpected_count == 0
    assert result.outcome("parsed_columns").success


def test_parsed_suite_names_each_broken_rule(spark: SparkSession) -> None:
    bad = [
        flow(1, srcport=70000, dstport=-1, protocol=300),
        flow(2, bytes=-5, packets=-1, end_time=T0 - timedelta(seconds=1)),
        flow(3, action="MAYBE", log_status="BAD", srcaddr="999.1.1.1"),
        flow(4, flow_id=None),
        _nodata(5),
    ]
    result = validate_table("parsed", _parsed(enriched_df(spark, bad)).drop("account_id"))
    assert not result.success
    _assert_only(result, {
        "parsed_columns", "srcport_range", "dstport_range", "protocol_range", "bytes_non_negative",
        "packets_non_negative", "start_not_after_end", "action_in_set", "log_status_in_set",
        "addresses_valid", "flow_id_present",
    })  # fmt: skip
    assert result.outcome("srcport_range").sample == (70000,)
    assert result.outcome("dstport_range").sample == (-1,)
    assert result.outcome("protocol_range").sample == (300,)
    assert result.outcome("bytes_non_negative").sample == (-5,)
    assert result.outcome("action_in_set").sample == ("MAYBE",)
    assert result.outcome("log_status_in_set").sample == ("BAD",)
    assert result.outcome("addresses_valid").sample == ("srcaddr",)
    assert result.outcome("start_not_after_end").unexpected_count == 1
    assert result.outcome("flow_id_present").unexpected_count == 1
    assert "account_id" not in result.outcome("parsed_columns").observed_value
    assert "FAIL protocol_range" in result.summary()


def test_enriched_suite_passes_on_good_flows_with_truth(spark: SparkSession) -> None:
    rows = _good_flows()
    truth = _truth(spark, [r for r in rows if r["is_traffic"]])
    result = validate_table(
        "enriched", enriched_df(spark, rows), min_attributed_share=0.5, truth_sides_df=truth
    )
    assert result.success, result.summary()
    # sides: 2 + 2 + 1 of 6 on the three traffic rows
    assert result.outcome("attributed_share").observed_value == pytest.approx(5 / 6)
    assert result.outcome("cross_region_consistent").unexpected_count == 0
    assert result.outcome("no_misattribution").unexpected_count == 0


def test_enriched_suite_names_each_broken_rule(spark: SparkSession) -> None:
    rows = [
        flow(1, src_attribution_status="pending"),
        flow(2, "checkout", "search", cross_region=False),  # regions differ
        flow(3, "search", None, cross_region=True),  # dst region unknown
        flow(4, None, None, dst_attribution_status=None),
        flow(5),
        flow(6, src_attribution_status=None, dst_attribution_status="pending"),
        flow(7, src_attributed_by="guess"),
    ]
    truth_rows = [dict(r) for r in rows]
    truth_rows[4]["src_app"] = "search"  # flow 5's src was search, we said checkout
    truth = _truth(spark, truth_rows)
    enriched = enriched_df(spark, rows).drop("origin_sub")
    result = validate_table("enriched", enriched, min_attributed_share=0.9, truth_sides_df=truth)
    _assert_only(result, {
        "enriched_columns", "src_attribution_status_final", "src_attribution_status_present",
        "dst_attribution_status_final", "dst_attribution_status_present",
        "src_attributed_by_in_set", "cross_region_consistent", "attributed_share",
        "no_misattribution",
    })  # fmt: skip
    assert result.outcome("src_attributed_by_in_set").sample == ("guess",)
    assert "origin_sub" not in result.outcome("enriched_columns").observed_value
    assert result.outcome("src_attribution_status_final").sample == ("pending",)
    assert result.outcome("dst_attribution_status_final").sample == ("pending",)
    assert result.outcome("src_attribution_status_present").unexpected_count == 1
    assert result.outcome("dst_attribution_status_present").unexpected_count == 1
    assert result.outcome("cross_region_consistent").unexpected_count == 2
    assert set(result.outcome("cross_region_consistent").sample) == {
        "us-east-1->eu-west-1 cross_region=false",
        "eu-west-1->null cross_region=true",
    }
    # sides attributed: 1 (pending src) + 2 + 1 + 0 + 2 + 0 + 2 = 8 of 14
    assert result.outcome("attributed_share").observed_value == pytest.approx(8 / 14)
    assert result.outcome("no_misattribution").sample == ("src:checkout!=search",)


def _ownership(
    spark: SparkSession, rows: list[tuple[str, datetime | None, datetime | None]]
) -> DataFrame:
    data = [
        (ip, ip_key_py(ip), "app", "c", "111122223333", "us-east-1", "use1-az1", "vpc-1",
         "subnet-1", f"i-{n}", "instance", f"eni-{n}", None, "ec2", a, b, None)
        for n, (ip, a, b) in enumerate(rows)
    ]  # fmt: skip
    return spark.createDataFrame(data, OWNERSHIP_SCHEMA)


def _good_ownership(spark: SparkSession) -> DataFrame:
    t = [T0 + timedelta(hours=h) for h in range(3)]
    return _ownership(
        spark, [("192.0.2.1", t[0], t[1]), ("192.0.2.1", t[1], None), ("2001:db8::1", t[0], None)]
    )


def _bad_ownership(spark: SparkSession) -> DataFrame:
    t = [T0 + timedelta(hours=h) for h in range(3)]
    df = _ownership(
        spark,
        [
            ("192.0.2.1", t[0], t[2]),
            ("192.0.2.1", t[1], None),  # overlaps the first
            ("192.0.2.2", t[2], t[1]),  # ends before it starts
            ("192.0.2.3", t[0], None),
            ("192.0.2.4", t[0], None),  # its key is dropped below
            ("192.0.2.5", None, t[1]),  # no start
        ],
    )
    return df.withColumn("ip_key", F.when(F.col("ip") != "192.0.2.4", F.col("ip_key")))


def test_ownership_suite_passes_on_good_intervals(spark: SparkSession) -> None:
    result = validate_table("ownership", _good_ownership(spark))
    assert result.success, result.summary()


def test_ownership_suite_names_overlaps_and_inverted_intervals(spark: SparkSession) -> None:
    result = validate_table("ownership", _bad_ownership(spark).drop("subnet_id"))
    _assert_only(result, {
        "ownership_columns", "ip_key_present", "valid_from_present",
        "valid_from_before_valid_to", "ownership_no_overlap",
    })  # fmt: skip
    assert result.outcome("ownership_no_overlap").sample == ("192.0.2.1",)
    assert result.outcome("valid_from_before_valid_to").unexpected_count == 1
    assert result.outcome("ip_key_present").unexpected_count == 1
    assert result.outcome("valid_from_present").unexpected_count == 1
    assert "subnet_id" not in result.outcome("ownership_columns").observed_value


def _quarantine(spark: SparkSession, rows: list[tuple[str | None, str | None]]) -> DataFrame:
    data = [("file:x", str(n), 0, T0, reason, "detail", raw, T0) for n, (reason, raw) in enumerate(rows)]  # fmt: skip
    return spark.createDataFrame(data, QUARANTINE_SCHEMA)


def test_quarantine_suite(spark: SparkSession) -> None:
    good = validate_table("quarantine", _quarantine(spark, [("bad_gzip", "H4sI"), ("field_count", "2 x")]))  # fmt: skip
    assert good.success, good.summary()
    bad_df = _quarantine(spark, [("mystery", "x"), (None, "y"), ("empty", None)]).drop("detail")
    bad = validate_table("quarantine", bad_df)
    _assert_only(bad, {"quarantine_columns", "reason_known", "reason_present", "raw_present"})
    assert "detail" not in bad.outcome("quarantine_columns").observed_value
    assert bad.outcome("reason_known").sample == ("mystery",)
    assert bad.outcome("raw_present").unexpected_count == 1


def test_validate_sample_reports_failures_as_metrics(spark: SparkSession) -> None:
    df = enriched_df(spark, [flow(1, srcport=70000), flow(2)])
    report = validate_sample(df, "dredge_enriched", 1.0, seed=7)
    assert report["suite"] == "dredge_enriched"
    assert report["success"] is False
    assert report["failed"] == ["srcport_range"]
    assert "70000" in report["observed"]["srcport_range"]
    assert report["rows"] == 2
    assert report["seconds"] > 0
    json.dumps(report)


def test_validate_sample_reports_an_error_instead_of_raising(spark: SparkSession) -> None:
    report = validate_sample(spark.range(3), "enriched", 1.0)
    assert report["success"] is None
    assert report["suite"] == "dredge_enriched"
    assert "is_traffic" in report["error"] or "srcaddr" in report["error"], report
    json.dumps(report)


# ---- dredge dq ----------------------------------------------------------------------------


def test_dq_main_exit_codes_and_json(
    spark: SparkSession, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from spark_jobs.jobs import dq

    monkeypatch.chdir(tmp_path)  # the default result JSON goes to ./reports/dq

    good, bad = tmp_path / "good", tmp_path / "bad"
    _good_ownership(spark).write.format("delta").save(str(good))
    _bad_ownership(spark).write.format("delta").save(str(bad))
    conf = str(ROOT / "conf" / "local.yaml")
    out = tmp_path / "good.json"
    assert dq.main(["--table", "ownership", "--path", str(good), "--result-json", str(out), "--conf", conf]) == 0  # fmt: skip
    assert json.loads(out.read_text())["success"] is True
    assert "PASS ownership_no_overlap" in capsys.readouterr().out
    out = tmp_path / "bad.json"
    assert dq.main(["--table", "ownership", "--path", str(bad), "--result-json", str(out), "--conf", conf]) == 1  # fmt: skip
    assert json.loads(out.read_text())["success"] is False
    assert "FAIL ownership_no_overlap" in capsys.readouterr().out
    # the broken rows are outside this slice; without --result-json the JSON still goes out
    where = "ip = '192.0.2.3'"
    assert dq.main(["--table", "ownership", "--path", str(bad), "--where", where, "--conf", conf]) == 0  # fmt: skip
    default = tmp_path / "reports" / "dq" / "ownership.json"
    assert json.loads(default.read_text())["success"] is True
