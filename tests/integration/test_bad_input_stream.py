"""Bad input through the real stream: records of every kind AWS never writes, mixed with good
lines in the same records, put into kinesalite and read by one ``availableNow`` run of the
stream job. Each bad record or line lands in quarantine once, with its reason and provenance;
each good line lands in the enriched table (and its traffic on the topic); every batch
balances; the query does not fail.

Good lines are identified by provenance and core v2 fields only: the enriched table's other
columns are not this test's subject.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import ipaddress
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import kinesis_helpers as kh
import pytest
from _flowkit import (
    ACCOUNT,
    T0,
    counted_by_minute_and_apps,
    envelope,
    flows_by_minute_and_apps,
    overrides,
    rollup_messages,
    write_snapshot,
)

from spark_jobs import config
from spark_jobs.jobs.enrich_flows import run_stream
from spark_jobs.schemas import FIELDS, format_string
from spark_jobs.sinks.ownership import apply_observation, write_cidr_labels
from spark_jobs.sources.kinesis import kpl
from spark_jobs.sources.ownership import cidr_labels_df, label_row, read_snapshot_observation
from spark_jobs.transforms.decode import DEFAULT_MAX_DECODED_BYTES
from spark_jobs.transforms.flow_values import MAX_LINE_BYTES, MAX_VERSION

pytestmark = pytest.mark.integration

NAMES = [f.name for f in FIELDS]
FORMAT = format_string(NAMES)  # every field of every version
N_FIELDS = len(FIELDS)
_BASE = {
    "version": str(MAX_VERSION), "account-id": ACCOUNT, "interface-id": "eni-api1",
    "srcaddr": "192.0.2.10", "dstaddr": "198.51.100.9", "srcport": "443", "dstport": "50000",
    "protocol": "6", "packets": "10", "bytes": "1000", "start": str(T0 + 60),
    "end": str(T0 + 120), "action": "ACCEPT", "log-status": "OK", "vpc-id": "vpc-1",
    "subnet-id": "subnet-1", "instance-id": "i-1", "tcp-flags": "19", "type": "IPv4",
    "pkt-srcaddr": "192.0.2.10", "pkt-dstaddr": "198.51.100.9", "region": "us-east-1",
    "az-id": "use1-az1", "sublocation-type": "-", "sublocation-id": "-",
    "pkt-src-aws-service": "-", "pkt-dst-aws-service": "S3", "flow-direction": "egress",
    "traffic-path": "2", "reject-reason": "-", "resource-id": "-", "encryption-status": "0",
}  # fmt: skip
_NO_DATA = ("srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes",
            "action", "tcp-flags", "type", "pkt-srcaddr", "pkt-dstaddr", "pkt-dst-aws-service",
            "flow-direction", "traffic-path", "encryption-status")  # fmt: skip
_serial = iter(range(5000, 10**6))


def line(**tokens: str) -> str:
    """A full-format line; keyword ``pkt_dstaddr`` stands for field ``pkt-dstaddr``. Every
    line gets its own ``bytes`` unless it sets one, so that each line is unique."""
    given = {k.replace("_", "-"): v for k, v in tokens.items()}
    values = {**_BASE, "bytes": str(next(_serial)), **given}
    return " ".join(values.get(f.name, "-") for f in FIELDS)


def no_data(status: str) -> str:
    return line(**{f.replace("-", "_"): "-" for f in _NO_DATA}, log_status=status)


GOOD = [
    line(),
    line(srcaddr="2001:db8::10", dstaddr="2001:db8::20", pkt_srcaddr="2001:db8::10",
         pkt_dstaddr="2001:DB8:0:0:0:0:0:20", type="IPv6"),
    line(type="EFA", pkt_dst_aws_service="-"),
    line(action="REJECT", reject_reason="BPA", flow_direction="ingress", traffic_path="-"),
    line(pkt_src_aws_service="AMAZON_APPFLOW", pkt_dst_aws_service="ROUTE53_HEALTHCHECKS"),
    line(pkt_dst_aws_service="A_SERVICE_AWS_ADDS_LATER"),  # lenient: well-shaped names pass
    line(action="REJECT", reject_reason="A_REASON_AWS_ADDS_LATER"),
    line(tcp_flags="0"), line(tcp_flags="255"), line(tcp_flags="-", protocol="17"),
    *(line(traffic_path=str(p)) for p in range(1, 9)),
    *(line(sublocation_type=t, sublocation_id="sl-1") for t in ("wavelength", "outpost", "localzone")),
    *(line(encryption_status=e) for e in ("1", "2", "3", "-")),
    line(version="2"),
    line(start=str(T0 + 90), end=str(T0 + 90)),  # start == end is a one-packet window
    no_data("NODATA"), no_data("SKIPDATA"),
]  # fmt: skip
_STATUS_AT = NAMES.index("log-status")
GOOD_TRAFFIC = sum(1 for g in GOOD if g.split(" ")[_STATUS_AT] == "OK")

_ok = line()
_tokens = _ok.split(" ")
# (line, reason, detail or None to check the reason only)
BAD_LINES: list[tuple[str, str, str | None]] = [
    (" ".join(_tokens[:-1]), "field_count", f"expected {N_FIELDS} fields, got {N_FIELDS - 1}"),
    (_ok + " 7", "field_count", f"expected {N_FIELDS} fields, got {N_FIELDS + 1}"),
    ("", "field_count", f"expected {N_FIELDS} fields, got 1"),
    ("   ", "field_count", f"expected {N_FIELDS} fields, got 1"),
    (f"2 {ACCOUNT} eni-1 192.0.2.1 192.0.2.2 1 2 6 1 1 {T0} {T0} ACCEPT OK", "field_count",
     f"expected {N_FIELDS} fields, got 14"),  # a v2 line in a stream of another format
    (line() + "\n" + line(), "field_count", f"expected {N_FIELDS} fields, got {2 * N_FIELDS - 1}"),
    (line(instance_id="i-\ufffd"), "bad_utf8", "line has bytes that are not UTF-8"),
    (line().replace(" ", "\t", 3), "bad_separator", "tab between fields"),
    (line().replace(" OK", "  OK"), "bad_separator", "repeated space between fields"),
    (line() + " " * MAX_LINE_BYTES, "oversized", None),
    (line(packets="ten"), "bad_number", "packets=ten"),
    (line(bytes="-1"), "bad_number", "bytes=-1"),
    (line(packets="1.5"), "bad_number", "packets=1.5"),
    (line(bytes="1e3"), "bad_number", "bytes=1e3"),
    (line(packets="+5"), "bad_number", "packets=+5"),
    (line(bytes="18446744073709551616"), "bad_number", "bytes=18446744073709551616"),
    (line(bytes="9223372036854775808"), "bad_number", "bytes=9223372036854775808"),
    (line(srcport="https"), "bad_number", "srcport=https"),
    (line(start="100000000000"), "bad_number", "start=100000000000"),
    (line(end="-1"), "bad_number", "end=-1"),
    (line(version="v5"), "bad_number", "version=v5"),
    (line(tcp_flags="SYN"), "bad_number", "tcp-flags=SYN"),
    (line(traffic_path="x"), "bad_number", "traffic-path=x"),
    (line(encryption_status="yes"), "bad_number", "encryption-status=yes"),
    (line(srcaddr="192.0.2.256"), "bad_address", "srcaddr=192.0.2.256"),
    (line(dstaddr="fe80::1%eth0"), "bad_address", "dstaddr=fe80::1%eth0"),  # IPv6 zone id
    (line(srcaddr="2001:db8::1::2"), "bad_address", "srcaddr=2001:db8::1::2"),
    (line(dstaddr="ip-10-0-0-1"), "bad_address", "dstaddr=ip-10-0-0-1"),
    (line(srcaddr="192.0.2.0/24"), "bad_address", "srcaddr=192.0.2.0/24"),
    (line(srcaddr="192.000.2.1"), "bad_address", "srcaddr=192.000.2.1"),
    (line(dstaddr="192.0.2.1:443"), "bad_address", "dstaddr=192.0.2.1:443"),
    (line(pkt_srcaddr="1.2.3"), "bad_address", "pkt-srcaddr=1.2.3"),
    (line(dstport="65536"), "port_range", "dstport=65536"),
    (line(protocol="256"), "protocol_range", "protocol=256"),
    (line(start=str(T0 + 121)), "start_after_end", f"start={T0 + 121} > end={T0 + 120}"),
    (line(action="ALLOW"), "bad_value", "action=ALLOW"),
    (line(action="accept"), "bad_value", "action=accept"),
    (line(log_status="FAILED"), "bad_value", "log-status=FAILED"),
    (line(log_status="-"), "bad_value", "log-status=-"),
    (line(type="IPv5"), "bad_value", "type=IPv5"),
    (line(flow_direction="inbound"), "bad_value", "flow-direction=inbound"),
    (line(traffic_path="0"), "bad_value", "traffic-path=0"),
    (line(traffic_path="9"), "bad_value", "traffic-path=9"),
    (line(sublocation_type="datacenter"), "bad_value", "sublocation-type=datacenter"),
    (line(pkt_src_aws_service="s3"), "bad_value", "pkt-src-aws-service=s3"),
    (line(pkt_dst_aws_service="AMAZON-S3"), "bad_value", "pkt-dst-aws-service=AMAZON-S3"),
    (line(reject_reason="bpa"), "bad_value", "reject-reason=bpa"),
    (line(encryption_status="4"), "bad_value", "encryption-status=4"),
    (line(tcp_flags="256"), "bad_value", "tcp-flags=256"),
    (line(version="1"), "bad_value", "version=1"),
    (line(version=str(MAX_VERSION + 1)), "bad_value", f"version={MAX_VERSION + 1}"),
    (line(version="02"), "bad_value", "version=02"),
    (line(action="DROP", type="IPv7"), "bad_value", "action=DROP, type=IPv7"),
]  # fmt: skip


def _gz(obj: Any) -> bytes:
    return gzip.compress(obj if isinstance(obj, bytes) else json.dumps(obj).encode())


def _env(**changes: Any) -> dict[str, Any]:
    body = json.loads(gzip.decompress(envelope([line()])))
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def _with_digest(message: bytes, good_digest: bool) -> bytes:
    digest = hashlib.md5(message).digest()
    return kpl.MAGIC + message + (digest if good_digest else bytes(16))


def _bad_records() -> list[tuple[bytes, str, str | None]]:
    """(record bytes, reason, detail or None to check the reason only); built when the test
    runs, not when it is collected (the gzip bomb inflates 32 MiB)."""
    valid = envelope([line()])
    deep = b'{"messageType":"DATA_MESSAGE","owner":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    cap = DEFAULT_MAX_DECODED_BYTES
    not_json = "not a single JSON object"
    return [
        (b"not gzip at all", "bad_gzip", "Error -3 while decompressing data: incorrect header check"),
        (b"", "bad_gzip", "truncated gzip stream"),
        (valid[: len(valid) // 2], "bad_gzip", "truncated gzip stream"),
        (valid + b"junk", "bad_gzip", "4 bytes of trailing data after the gzip stream"),
        (gzip.compress(b"\0" * (cap + 1)), "oversized", f"decompresses to more than {cap} bytes"),
        (_gz(b"\xff\xfe not UTF-8"), "bad_utf8", None),
        (_gz(b"hello"), "bad_json", not_json),  # not JSON
        (_gz(b""), "bad_json", not_json),
        (_gz([1, 2]), "bad_json", not_json),  # JSON, not an object
        (_gz("a string"), "bad_json", not_json),
        (_gz(_env(logEvents=None)), "empty", "DATA_MESSAGE without logEvents"),
        (_gz(_env(logEvents=[])), "empty", "DATA_MESSAGE without logEvents"),
        (_gz(_env(logEvents="2 a b")), "bad_json", not_json),  # not a list
        (_gz(_env(logEvents=[{"id": "1", "timestamp": 0}])), "bad_json", "log event without a message"),
        (_gz(_env(messageType="DATA")), "bad_json", "unexpected messageType: DATA"),
        (_gz(_env(messageType=None)), "bad_json", "unexpected messageType: null"),
        (_gz(deep), "bad_json", not_json),  # nested far deeper than the JSON parser allows
        (gzip.compress(gzip.decompress(valid) * 2), "bad_json", not_json),  # two envelopes
        # KPL: a digest that does not match, a matching digest over a body cut short
        (_with_digest(kpl.encode([kpl.SubRecord("k", valid)])[4:-16], False), "bad_gzip", None),
        (_with_digest(b"\x1a\x05\x08", True), "bad_gzip", None),
    ]  # fmt: skip


@dataclass(frozen=True)
class Put:
    """One Kinesis record and what each of its (KPL sub-)records holds: a list of lines
    (line, reason and detail; None for a good line), a record-level (reason, detail), or
    ``"control"``."""

    data: bytes
    subs: tuple[list[tuple[str, str | None, str | None]] | tuple[str, str | None] | str, ...]


def _records() -> list[Put]:
    bad = list(BAD_LINES)
    good = [(g, None, None) for g in GOOD]
    puts = []
    while bad:  # records of 5 bad lines between good ones
        events = [good.pop(), *bad[:5], good.pop()] if len(good) >= 2 else bad[:5]
        bad = bad[5:]
        puts.append(Put(envelope([e for e, _, _ in events]), (events,)))
    puts.append(Put(envelope([g for g, _, _ in good]), (good,)))
    puts += [Put(data, ((reason, detail),)) for data, reason, detail in _bad_records()]
    puts.append(Put(envelope([], "CONTROL_MESSAGE"), ("control",)))
    kpl_lines = [(line(), None, None), (line(action="PASS"), "bad_value", "action=PASS")]
    aggregate = kpl.encode(
        [kpl.SubRecord("a", envelope([e for e, _, _ in kpl_lines])), kpl.SubRecord("b", b"x")]
    )
    puts.append(Put(aggregate, (kpl_lines, ("bad_gzip", None))))
    return puts


@pytest.fixture()
def stream_run(spark, tmp_path):
    kinesis = kh.client()
    stream = kh.create_stream(kinesis, 1, prefix="it-bad")
    puts = _records()
    seqs = kh.put(kinesis, stream, [p.data for p in puts], spread=False)
    run = stream.rsplit("-", 1)[1]
    settings = overrides(tmp_path, stream, run, "available_now")
    settings["source"]["log_format"] = FORMAT
    cfg = config.load("conf/local.yaml", settings)
    snapshot = write_snapshot(
        tmp_path, "s0", "2026-01-01T00:20:00Z", [("192.0.2.10", "api", "us-east-1", "us-east-1a")]
    )
    apply_observation(
        spark, cfg.paths.resolve("ownership"), read_snapshot_observation(spark, [snapshot])
    )
    labels = [label_row("0.0.0.0/0", "internet", None, None, "internet")]
    write_cidr_labels(cidr_labels_df(spark, labels), cfg.paths.resolve("cidr_labels"))
    origin = f"kinesis:{stream}/shardId-000000000000"
    yield cfg, origin, list(zip(seqs, puts, strict=True))
    kh.delete_created(kinesis)


def _expected(placed: list[tuple[str, Put]]) -> tuple[dict, dict]:
    """(quarantine key -> (reason, detail, raw)), (enriched key -> line) by
    (origin_offset, origin_sub)."""
    bad: dict[tuple[str, int | None], tuple[str, str | None, str | None]] = {}
    good: dict[tuple[str, int | None], str] = {}
    for seq, put in placed:
        for j, sub in enumerate(put.subs):
            offset = seq if len(put.subs) == 1 else kpl.sub_sequence_number(seq, j)
            if sub == "control":
                continue
            if isinstance(sub, tuple):
                bad[(offset, None)] = (*sub, None)
                continue
            for k, (text, reason, detail) in enumerate(sub):
                if reason is None:
                    good[(offset, k)] = text
                else:
                    bad[(offset, k)] = (reason, detail, text)
    return bad, good


def test_every_bad_kind_is_quarantined_once_and_every_good_line_lands(spark, stream_run):
    cfg, origin, placed = stream_run
    writer = run_stream(spark, cfg)  # returns only when the query ended without failing
    bad, good = _expected(placed)
    assert len(bad) >= 40

    quarantine = spark.read.format("delta").load(cfg.paths.resolve("quarantine")).collect()
    assert {q.origin for q in quarantine} == {origin}
    keys = Counter((q.origin_offset, q.origin_sub) for q in quarantine)
    missing = {k: bad[k][:2] for k in bad.keys() - keys.keys()}
    assert keys == Counter(bad.keys()), missing  # each bad one exactly once
    for q in quarantine:
        reason, detail, raw = bad[(q.origin_offset, q.origin_sub)]
        got = (q.reason, q.detail if detail is not None else None)  # None: any detail
        assert got == (reason, detail), q.raw[:120]
        assert q.detail
        if q.origin_sub is None:  # record level: the bytes as received
            assert base64.b64decode(q.raw) == _record_bytes(placed, q.origin_offset)
        else:
            assert q.raw == raw

    enriched = spark.read.format("delta").load(cfg.paths.resolve("enriched"))
    columns = ("origin", "origin_offset", "origin_sub", "flow_id", "srcaddr", "dstaddr", "bytes",
               "log_status")  # fmt: skip
    rows = enriched.select(*columns).collect()
    assert Counter((r.origin_offset, r.origin_sub) for r in rows) == Counter(good.keys())
    for r in rows:
        tokens = dict(zip(NAMES, good[(r.origin_offset, r.origin_sub)].split(" "), strict=True))
        flow_key = f"{origin}|{r.origin_offset}|{r.origin_sub}".encode()
        assert (r.origin, r.flow_id) == (origin, hashlib.sha256(flow_key).hexdigest())
        assert (r.srcaddr, r.dstaddr) == (_address(tokens["srcaddr"]), _address(tokens["dstaddr"]))
        assert r.bytes == (None if tokens["bytes"] == "-" else int(tokens["bytes"]))
        assert r.log_status == tokens["log-status"]
    assert spark.read.format("delta").load(cfg.paths.resolve("pending")).count() == 0
    messages = rollup_messages(spark, cfg.kafka.topic)
    assert sum(m["flows"] for _, m in messages) == GOOD_TRAFFIC + 1  # + the KPL good line
    assert flows_by_minute_and_apps(messages) == counted_by_minute_and_apps(enriched)

    metrics = writer.metrics
    assert all(m["records_balanced"] == 1 for m in metrics)
    n_bad_records = sum(1 for _, sub in bad if sub is None)
    expected = {
        "records_in": sum(len(p.subs) for _, p in placed),
        "bad_records": n_bad_records,
        "control_messages": 1,
        "bad_lines": len(bad) - n_bad_records,
        "lines_parsed": len(bad) - n_bad_records + len(good),
    }
    assert {k: sum(int(m[k]) for m in metrics) for k in expected} == expected


def _address(token: str) -> str | None:
    return None if token == "-" else str(ipaddress.ip_address(token))


def _record_bytes(placed: list[tuple[str, Put]], offset: str) -> bytes:
    seq, _, sub = offset.partition(":")
    put = next(p for s, p in placed if s == seq)
    return put.data if not sub else kpl.decode(put.data)[int(sub)].data  # type: ignore[index]
