"""Flow-log files: header-driven text (.log.gz), AWS Parquet, envelope files; availableNow twice."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from spark_jobs.sources.files import (
    read_cloudwatch_envelope_files,
    read_flow_log_parquet,
    read_flow_log_text,
)
from spark_jobs.transforms.decode import filter_control, filter_lines, to_quarantine
from spark_jobs.transforms.parse import (
    filter_valid_flows,
    parse_flow_lines_with_header,
    to_quarantine_rows,
)

V2_HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status"
)
V2_LINES = [
    "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 "
    "1418530010 1418530070 ACCEPT OK",
    "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA",
    "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 99999 6 20 4249 "
    "1418530010 1418530070 REJECT OK",
]
CUSTOM_HEADER = "srcaddr dstaddr pkt-srcaddr tcp-flags az-id"
CUSTOM_LINES = ["2001:DB8::7 198.51.100.1 10.0.0.9 2 use1-az1"]


def write_log_gz(path: Path, header: str, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write("\n".join([header, *lines]) + "\n")


def parsed(lines_df: DataFrame) -> DataFrame:
    return filter_valid_flows(parse_flow_lines_with_header(lines_df))


def test_text_files_use_their_own_header(spark: SparkSession, tmp_path: Path) -> None:
    write_log_gz(tmp_path / "AWSLogs/1/a.log.gz", V2_HEADER, V2_LINES)
    write_log_gz(tmp_path / "AWSLogs/2/b.log.gz", CUSTOM_HEADER, CUSTOM_LINES)
    (tmp_path / "AWSLogs/2/notes.txt").write_text("not a flow log\n")
    lines = read_flow_log_text(spark, str(tmp_path), path_glob="*.log.gz")
    parsed_df = parse_flow_lines_with_header(lines)
    got = {
        (Path(r.origin).name, r.origin_offset): (r.srcaddr, r.dstaddr, r.pkt_srcaddr, r.tcp_flags,
                                                 r.az_id, r.log_status)
        for r in filter_valid_flows(parsed_df).collect()
    }  # fmt: skip
    assert got == {
        ("a.log.gz", "2"): ("172.31.16.139", "172.31.16.21", None, None, None, "OK"),
        ("a.log.gz", "3"): (None, None, None, None, None, "NODATA"),
        ("b.log.gz", "2"): ("2001:db8::7", "198.51.100.1", "10.0.0.9", 2, "use1-az1", None),
    }
    (bad,) = to_quarantine_rows(parsed_df).collect()
    assert (Path(bad.origin).name, bad.origin_offset, bad.reason) == ("a.log.gz", "4", "port_range")
    assert bad.origin == f"file:{tmp_path}/AWSLogs/1/a.log.gz"
    assert bad.raw == V2_LINES[2]


def test_crlf_text_files_read_as_their_lines(spark: SparkSession, tmp_path: Path) -> None:
    """A file written with CRLF line ends: the same lines, numbers and header as with LF;
    blank lines (CRLF or LF alone) are skipped but keep their place in the numbering, and a
    lone CR inside a line is not a line end; a CR at a line's end is cut wherever the line
    is (the last line of a file without a final newline too)."""
    body = "\r\n".join([V2_HEADER, V2_LINES[0], "", V2_LINES[2] + "\rx", "  "]) + "\r\n\n"
    (tmp_path / "a.log.gz").write_bytes(gzip.compress(body.encode()))
    rows = read_flow_log_text(spark, str(tmp_path)).orderBy("origin_offset").collect()
    assert [(r.origin_offset, r.log_format, r.line) for r in rows] == [
        ("2", V2_HEADER, V2_LINES[0]),
        ("4", V2_HEADER, V2_LINES[2] + "\rx"),
    ]
    (valid,) = filter_valid_flows(parse_flow_lines_with_header(read_flow_log_text(
        spark, str(tmp_path)))).collect()  # fmt: skip
    assert (valid.origin_offset, valid.srcaddr, valid.log_status) == ("2", "172.31.16.139", "OK")
    # without a final newline: a last line's CR is cut too, and a CR alone is a blank line
    for name, tail in (("b", "\r"), ("c", "\n\r")):
        body = f"{V2_HEADER}\n{V2_LINES[0]}{tail}"
        (tmp_path / name / "x.log.gz").parent.mkdir()
        (tmp_path / name / "x.log.gz").write_bytes(gzip.compress(body.encode()))
        rows = read_flow_log_text(spark, str(tmp_path / name)).collect()
        assert [(r.origin_offset, r.line) for r in rows] == [("2", V2_LINES[0])], name


def test_bytes_that_are_not_utf8_in_a_text_file_are_quarantined(
    spark: SparkSession, tmp_path: Path
) -> None:
    path = tmp_path / "a.log.gz"
    good = V2_LINES[0].encode()
    bad = good.replace(b"123456789010", b"1234\xff\xfe789010")
    path.write_bytes(gzip.compress(V2_HEADER.encode() + b"\n" + good + b"\n" + bad + b"\n"))
    parsed_df = parse_flow_lines_with_header(read_flow_log_text(spark, str(tmp_path)))
    assert [r.origin_offset for r in filter_valid_flows(parsed_df).collect()] == ["2"]
    (row,) = to_quarantine_rows(parsed_df).collect()
    assert (row.origin, row.origin_offset, row.reason) == (f"file:{path}", "3", "bad_utf8")


def test_parquet_delivery_columns_are_underscored_fields(
    spark: SparkSession, tmp_path: Path
) -> None:
    rows = [
        (2, "123456789010", "192.0.2.1", "2001:db8::2", 443, 51000, 6, 10, 840, 1700000000,
         1700000060, "ACCEPT", "OK", "vpc-1", "egress", 8),
        (2, "123456789010", None, None, None, None, None, None, None, 1700000000, 1700000060,
         None, "NODATA", "vpc-1", None, None),
        (2, "123456789010", "192.0.2.1", "198.51.100.9", 443, 51000, 300, 1, 1, 1700000000,
         1700000060, "ACCEPT", "OK", "vpc-1", "ingress", 1),
    ]  # fmt: skip
    schema = (
        "version int, account_id string, srcaddr string, dstaddr string, srcport int, "
        "dstport int, protocol int, packets bigint, bytes bigint, start bigint, `end` bigint, "
        "action string, log_status string, vpc_id string, flow_direction string, traffic_path int"
    )
    spark.createDataFrame(rows, schema).coalesce(1).write.parquet(str(tmp_path / "pq"))
    lines = read_flow_log_parquet(spark, str(tmp_path / "pq"))
    parsed_df = parse_flow_lines_with_header(lines)
    flows = {r.log_status: r for r in filter_valid_flows(parsed_df).collect()}
    ok = flows["OK"]
    assert (ok.srcaddr, ok.dstaddr_key, ok.dstport, ok.bytes) == (
        "192.0.2.1",
        "20010db8000000000000000000000002",
        51000,
        840,
    )
    assert (ok.vpc_id, ok.flow_direction, ok.traffic_path) == ("vpc-1", "egress", 8)
    assert ok.start_time == datetime.fromtimestamp(1700000000)
    assert ok.origin_offset == "1" and ok.origin.startswith("file:")
    assert flows["NODATA"].is_traffic is False and flows["NODATA"].srcaddr is None
    (bad,) = to_quarantine_rows(parsed_df).collect()
    assert (bad.origin_offset, bad.reason, bad.detail) == ("3", "protocol_range", "protocol=300")


def test_cloudwatch_envelope_files(spark: SparkSession, tmp_path: Path) -> None:
    data = {"messageType": "DATA_MESSAGE", "logEvents": [{"id": "1", "timestamp": 1,
            "message": V2_LINES[0]}, {"id": "2", "timestamp": 1, "message": V2_LINES[1]}]}  # fmt: skip
    control = {"messageType": "CONTROL_MESSAGE", "logEvents": [{"id": "", "timestamp": 1,
               "message": "CWL CONTROL MESSAGE"}]}  # fmt: skip
    text = "\n".join([json.dumps(data), json.dumps(control), '{"messageType": ', ""])
    (tmp_path / "env.json").write_text(text)
    decoded = read_cloudwatch_envelope_files(spark, str(tmp_path))
    lines = [(r.origin_offset, r.origin_sub, r.line) for r in filter_lines(decoded).collect()]
    assert sorted(lines) == [("1", 0, V2_LINES[0]), ("1", 1, V2_LINES[1])]
    assert [r.origin_offset for r in filter_control(decoded).collect()] == ["2"]
    (bad,) = to_quarantine(decoded).collect()
    assert (bad.origin_offset, bad.reason, bad.raw) == ("3", "bad_json", '{"messageType": ')


def run_available_now(spark: SparkSession, src: Path, out: Path, checkpoint: Path) -> None:
    stream = read_flow_log_text(spark, str(src), streaming=True, path_glob="*.log.gz")
    query = (
        parsed(stream)
        .writeStream.format("parquet")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .start(str(out))
    )
    query.awaitTermination(300)
    assert query.exception() is None


def test_available_now_twice_second_run_adds_nothing(spark: SparkSession, tmp_path: Path) -> None:
    src, out, ckpt = tmp_path / "src", tmp_path / "out", tmp_path / "ckpt"
    write_log_gz(src / "2024/05/01/a.log.gz", V2_HEADER, V2_LINES)
    write_log_gz(src / "2024/05/01/b.log.gz", CUSTOM_HEADER, CUSTOM_LINES)
    run_available_now(spark, src, out, ckpt)
    first = sorted(
        (r.srcaddr or "-", r.log_status or "-") for r in spark.read.parquet(str(out)).collect()
    )
    assert first == [("-", "NODATA"), ("172.31.16.139", "OK"), ("2001:db8::7", "-")]

    run_available_now(spark, src, out, ckpt)
    assert spark.read.parquet(str(out)).count() == len(first)

    write_log_gz(src / "2024/05/02/c.log.gz", "srcaddr dstport", ["203.0.113.5 8443"])
    run_available_now(spark, src, out, ckpt)
    new = [r for r in spark.read.parquet(str(out)).collect() if r.srcaddr == "203.0.113.5"]
    assert [(r.dstport, r.origin_offset) for r in new] == [(8443, "2")]
    assert spark.read.parquet(str(out)).count() == len(first) + 1


def test_parquet_stream_reads_missing_fields_as_dash(spark: SparkSession, tmp_path: Path) -> None:
    src, out = tmp_path / "pq", tmp_path / "out"
    rows = [(2, "192.0.2.1", "198.51.100.2", 443, 1700000000, 1700000060, "OK")]
    schema = (
        "version int, srcaddr string, dstaddr string, dstport int, start bigint, `end` bigint, "
        "log_status string"
    )
    spark.createDataFrame(rows, schema).coalesce(1).write.parquet(str(src))
    stream = read_flow_log_parquet(spark, str(src), streaming=True, path_glob="*.parquet")
    query = (
        parsed(stream)
        .writeStream.format("parquet")
        .option("checkpointLocation", str(tmp_path / "ckpt"))
        .trigger(availableNow=True)
        .start(str(out))
    )
    query.awaitTermination(300)
    (row,) = spark.read.parquet(str(out)).collect()
    assert (row.srcaddr, row.dstaddr, row.dstport, row.log_status) == (
        "192.0.2.1",
        "198.51.100.2",
        443,
        "OK",
    )
    assert (row.srcport, row.vpc_id, row.origin_offset) == (None, None, "1")
