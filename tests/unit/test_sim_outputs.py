"""Simulator outputs: files, envelopes, truth and snapshots agree with each other and with AWS."""

from __future__ import annotations

import bisect
import gzip
import ipaddress
import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from spark_jobs.jobs.simulate import main as simulate_main
from spark_jobs.sim.envelopes import CONTROL_TEXT, MAX_EVENTS, ListSink, decode
from spark_jobs.sim.formats import V2_FIELDS, V5_FIELDS, header
from spark_jobs.sim.inventory import SNAPSHOT_FIELDS
from spark_jobs.sim.runner import SimConfig, Summary, run

FLEET_KINDS = {"instance", "task", "load_balancer", "nat_gateway"}
FILE_RE = re.compile(
    r"flowlogs/AWSLogs/(\d{12})/vpcflowlogs/([a-z]{2}-[a-z]+-\d)/\d{4}/\d{2}/\d{2}/"
    r"\1_vpcflowlogs_\2_fl-[0-9a-f]{17}_\d{8}T\d{4}Z_[0-9a-f]{8}\.log\.gz$"
)


def _config(out: Path, **kw: object) -> SimConfig:
    base: dict[str, object] = dict(out=out, minutes=4, apps=12, seed=11, flows_per_minute=3000,
                                   malformed_share=0.02)  # fmt: skip
    base.update(kw)
    return SimConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary, ListSink]:
    out = tmp_path_factory.mktemp("sim")
    sink = ListSink()
    return out, run(_config(out), sink), sink


def _file_lines(out: Path) -> dict[str, list[str]]:
    return {
        str(p.relative_to(out)): gzip.decompress(p.read_bytes()).decode().splitlines()
        for p in sorted(out.glob("flowlogs/**/*.log.gz"))
    }


def _all_lines(out: Path) -> list[str]:
    return [line for lines in _file_lines(out).values() for line in lines[1:]]


def _truth(out: Path) -> pd.DataFrame:
    return pq.read_table(out / "truth" / "flows").to_pandas()


def _ownership(out: Path) -> dict[str, list[tuple[int, int, dict[str, str]]]]:
    df = pq.read_table(out / "truth" / "ownership.parquet").to_pandas()
    by_ip: dict[str, list[tuple[int, int, dict[str, str]]]] = {}
    for row in df.to_dict("records"):
        frm = int(row["valid_from"].timestamp())
        to = 2**62 if pd.isna(row["valid_to"]) else int(row["valid_to"].timestamp())
        by_ip.setdefault(row["ip"], []).append((frm, to, row))
    return {ip: sorted(v, key=lambda x: x[0]) for ip, v in by_ip.items()}


def _owner_at(own: dict[str, list[tuple[int, int, dict[str, str]]]], ip: str, t: int) -> dict:
    ivs = own.get(ip, [])
    i = bisect.bisect_right([iv[0] for iv in ivs], t) - 1
    assert i >= 0 and t < ivs[i][1], f"no owner of {ip} at {t}"
    return ivs[i][2]


def test_same_seed_gives_identical_bytes(sim: tuple[Path, Summary, ListSink],
                                         tmp_path: Path) -> None:  # fmt: skip
    out, _, sink = sim
    sink2 = ListSink()
    run(_config(tmp_path / "again"), sink2)
    first = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = tmp_path / "again"
    second = {str(p.relative_to(again)): p.read_bytes() for p in again.rglob("*") if p.is_file()}
    assert first == second
    assert [e.data for e in sink.envelopes] == [e.data for e in sink2.envelopes]
    run(_config(tmp_path / "other", seed=12), None)
    assert _all_lines(tmp_path / "other") != _all_lines(out)


def test_files_follow_the_s3_layout_with_a_header(sim: tuple[Path, Summary, ListSink]) -> None:
    out, summary, _ = sim
    files = _file_lines(out)
    assert len(files) == summary.files > 3
    for path, lines in files.items():
        assert FILE_RE.search(path), path
        assert lines[0] == header("v2") == " ".join(V2_FIELDS)
    assert len(_all_lines(out)) == summary.flows


def test_envelopes_decode_to_the_same_lines_as_the_files(
    sim: tuple[Path, Summary, ListSink],
) -> None:
    out, summary, sink = sim
    assert len(sink.envelopes) == summary.envelopes
    messages: list[str] = []
    kinds = Counter()
    for env in sink.envelopes:
        body = decode(env.data)
        kinds[body["messageType"]] += 1
        events = body["logEvents"]
        assert isinstance(events, list) and 1 <= len(events) <= MAX_EVENTS
        if body["messageType"] == "CONTROL_MESSAGE":
            assert events[0]["message"] == CONTROL_TEXT
            continue
        assert set(body) == {"messageType", "owner", "logGroup", "logStream",
                             "subscriptionFilters", "logEvents"}  # fmt: skip
        for ev in events:
            tokens = ev["message"].split(" ")
            assert tokens[2] == body["logStream"] and tokens[1] == body["owner"]
            assert len(ev["id"]) == 56 and isinstance(ev["timestamp"], int)
            messages.append(ev["message"])
    assert kinds["CONTROL_MESSAGE"] >= 1 and kinds["DATA_MESSAGE"] > 10
    assert Counter(messages) == Counter(_all_lines(out))
    deliveries = [e.delivery for e in sink.envelopes]
    assert deliveries == sorted(deliveries)


def test_truth_names_the_owner_at_each_flow_start(sim: tuple[Path, Summary, ListSink]) -> None:
    out, _, _ = sim
    own, truth = _ownership(out), _truth(out)
    checked = 0
    for row in truth[truth.log_status == "OK"].to_dict("records"):
        for side in ("src", "dst"):
            if row[f"{side}_kind"] not in FLEET_KINDS:
                assert row[f"{side}_app"] is None
                continue
            owner = _owner_at(own, row[f"{side}addr"], row["start"])
            for f in ("app", "cluster", "az", "region", "resource_id", "kind", "account_id"):
                assert owner[f] == row[f"{side}_{f}"], (side, f, row)
            checked += 1
    assert checked > 5000


def test_a_reused_ip_is_attributed_to_each_owner_in_turn(
    sim: tuple[Path, Summary, ListSink],
) -> None:
    out, _, _ = sim
    own, truth = _ownership(out), _truth(out)
    ok = truth[truth.log_status == "OK"]
    seen = pd.concat(
        [
            ok[["srcaddr", "src_app", "start"]].set_axis(["ip", "app", "start"], axis=1),
            ok[["dstaddr", "dst_app", "start"]].set_axis(["ip", "app", "start"], axis=1),
        ]
    )
    seen = seen[seen.app.notna()]
    apps_per_ip = seen.groupby("ip").app.nunique()
    reused = sorted(apps_per_ip[apps_per_ip >= 2].index)
    assert reused, "no address carried flows of two different apps"
    ip = reused[0]
    rows = seen[seen.ip == ip].sort_values("start")
    first, last = rows.iloc[0], rows.iloc[-1]
    assert first.app != last.app
    assert _owner_at(own, ip, int(first.start))["app"] == first.app
    assert _owner_at(own, ip, int(last.start))["app"] == last.app
    holders = [iv[2]["app"] for iv in own[ip]]
    assert first.app in holders and last.app in holders


def test_snapshots_match_the_contract_and_the_truth(sim: tuple[Path, Summary, ListSink]) -> None:
    out, summary, _ = sim
    own = _ownership(out)
    files = sorted((out / "inventory").glob("snapshot-*.jsonl"))
    assert len(files) == summary.snapshots == 5
    manifest = [
        json.loads(x) for x in (out / "inventory" / "_manifest.jsonl").read_text().splitlines()
    ]
    assert [m["path"] for m in manifest] == [f.name for f in files]
    for f in files:
        rows = [json.loads(x) for x in f.read_text().splitlines()]
        observed = {r["observed_at"] for r in rows}
        assert len(observed) == 1
        stamp = observed.pop()
        assert f.name == "snapshot-" + stamp.replace("-", "").replace(":", "") + ".jsonl"
        t = int(pd.Timestamp(stamp).timestamp())
        scopes = [r for r in rows if r.get("scope_only")]
        assert len(scopes) == 3 and all(r["ip"] is None for r in scopes)
        listed = set()
        for r in rows:
            if r.get("scope_only"):
                assert list(r) == [*SNAPSHOT_FIELDS, "scope_only"]
                continue
            assert list(r) == list(SNAPSHOT_FIELDS)
            listed.add((r["ip"], r["app"], r["resource_id"], r["az"]))
        expected = {
            (ip, iv[2]["app"], iv[2]["resource_id"], iv[2]["az"])
            for ip, ivs in own.items() for iv in ivs if iv[0] <= t < iv[1]
        }  # fmt: skip
        assert listed == expected


def test_intra_fleet_flows_are_logged_at_both_enis(sim: tuple[Path, Summary, ListSink]) -> None:
    truth = _truth(sim[0])
    key = ["srcaddr", "dstaddr", "srcport", "dstport", "protocol", "start", "end"]
    ok = truth[truth.log_status == "OK"]
    egress = ok[
        (ok.flow_direction == "egress") & ok.src_kind.isin(["instance", "task", "load_balancer"])
    ]
    egress = egress[egress.dst_kind.isin(["instance", "task"])]
    ingress = ok[ok.flow_direction == "ingress"]
    pairs = egress.merge(ingress, on=key, how="left", suffixes=("", "_in"), indicator=True)
    assert len(egress) > 1000
    assert (pairs["_merge"] == "both").all()
    assert (pairs.interface_id != pairs.interface_id_in).all()
    assert (pairs.region_in == pairs.dst_region).all()
    same_vpc = pairs[pairs.src_region == pairs.dst_region]
    assert len(same_vpc) > 500
    assert (same_vpc.src_az != same_vpc.dst_az).any() and (same_vpc.src_az == same_vpc.dst_az).any()
    assert (pairs.src_region != pairs.dst_region).sum() > 10  # deliberate cross-region talkers


def test_statuses_rejects_and_delivery_delays(sim: tuple[Path, Summary, ListSink]) -> None:
    out, _, _ = sim
    lines = _all_lines(out)
    status = Counter(line.split(" ")[-1] for line in lines)
    assert status["NODATA"] > 0 and status["SKIPDATA"] > 0
    assert any(" REJECT OK" in line for line in lines)
    nodata = next(line for line in lines if line.endswith(" NODATA"))
    assert nodata.split(" ")[3:10] == ["-"] * 7 and nodata.split(" ")[12] == "-"
    truth = _truth(out)
    delay = truth.delivered_at - truth.end
    assert delay.min() >= 60 and delay.median() < 900 and delay.max() >= 1800


def _is_valid(line: str) -> bool:
    t = line.split(" ")
    if len(t) != 14 or t[-1] != "OK":
        return t[-1] in ("NODATA", "SKIPDATA") and len(t) == 14
    try:
        ipaddress.ip_address(t[3]), ipaddress.ip_address(t[4])
        ports, proto, start, end = [int(t[5]), int(t[6])], int(t[7]), int(t[10]), int(t[11])
        int(t[8]), int(t[9])
    except ValueError:
        return False
    return all(0 <= p <= 65535 for p in ports) and 0 <= proto <= 255 and start <= end


def test_malformed_share_is_respected(sim: tuple[Path, Summary, ListSink]) -> None:
    out, summary, _ = sim
    truth = _truth(out)
    bad = truth[truth.malformed_reason.notna()]
    assert summary.malformed == len(bad)
    share = len(bad) / summary.ok
    assert 0.014 < share < 0.026
    assert set(bad.malformed_reason) >= {"field_count", "bad_number", "bad_address",
                                         "port_range", "protocol_range", "start_after_end"}  # fmt: skip
    assert not any(_is_valid(line) for line in bad.line)
    good = truth[truth.malformed_reason.isna()]
    assert all(_is_valid(line) for line in good.line)
    assert Counter(truth.line) == Counter(_all_lines(out))


def test_v5_format_has_packet_addresses_and_metadata(tmp_path: Path) -> None:
    run(_config(tmp_path, fmt="v5", minutes=2, malformed_share=0.0, write_truth=False))
    files = _file_lines(tmp_path)
    assert all(lines[0] == " ".join(V5_FIELDS) for lines in files.values())
    rows = [line.split(" ") for lines in files.values() for line in lines[1:]]
    assert all(len(r) == len(V5_FIELDS) and r[0] == "5" for r in rows)
    col = {f: i for i, f in enumerate(V5_FIELDS)}
    nat_in = [r for r in rows if r[col["pkt-dstaddr"]] not in (r[col["dstaddr"]], "-")]
    assert nat_in and all(r[col["flow-direction"]] == "ingress" for r in nat_in)
    assert {r[col["traffic-path"]] for r in rows} >= {"1", "5", "7", "8", "-"}
    assert any(r[col["type"]] == "IPv6" and ":" in r[col["srcaddr"]] for r in rows)
    assert any(r[col["pkt-dst-aws-service"]] == "S3" for r in rows)


def test_cli_prints_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--out", str(tmp_path), "--minutes", "1", "--apps", "4", "--seed", "3",
            "--flows-per-minute", "500", "--malformed-share", "0", "--snapshot-every", "30",
            "--snapshot-lag", "90", "--start", "2025-06-01T12:00:00Z"]  # fmt: skip
    assert simulate_main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("simulate: flows=") and "snapshots=3" in printed
    assert (tmp_path / "ip-ranges.json").exists() and (tmp_path / "vpcs.json").exists()
    manifest = (tmp_path / "inventory" / "_manifest.jsonl").read_text().splitlines()
    assert [(m["observed_at"], m["available_at"]) for m in map(json.loads, manifest)] == [
        ("2025-06-01T12:00:00Z", "2025-06-01T12:01:30Z"),
        ("2025-06-01T12:00:30Z", "2025-06-01T12:02:00Z"),
        ("2025-06-01T12:01:00Z", "2025-06-01T12:02:30Z"),
    ]
    assert next(tmp_path.glob("flowlogs/AWSLogs/*/vpcflowlogs/*/2025/06/01/*.log.gz"))


def test_minutes_generated_in_parts_stay_consistent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("spark_jobs.sim.runner.CHUNK_LINES", 700)  # 3000/min -> 5 parts
    sink = ListSink()
    summary = run(_config(tmp_path, minutes=2), sink)
    messages = [
        ev["message"]
        for env in sink.envelopes
        if (body := decode(env.data))["messageType"] == "DATA_MESSAGE"
        for ev in body["logEvents"]  # type: ignore[attr-defined]
    ]
    assert Counter(messages) == Counter(_all_lines(tmp_path))
    assert [e.delivery for e in sink.envelopes] == sorted(e.delivery for e in sink.envelopes)
    assert 5000 < summary.flows < 7000
    truth = _truth(tmp_path)
    t0 = SimConfig(out=tmp_path).start
    assert truth.start.min() >= t0 and truth.start.max() < t0 + 120
