"""``dredge_progress`` lines from query progress: parsing is pure, fed real captured progress."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from spark_jobs import console
from spark_jobs.sinks.progress import ProgressLogger, parse_progress, source_lag_ms

# Two progress events of a dredge-kinesis -> noop query over kinesalite (2 shards, 5 records,
# maxRecordsPerBatch 3, availableNow), captured from ``query.recentProgress[i].json``.
CAPTURED = [
    json.loads(line)
    for line in (Path(__file__).parent / "fixtures" / "kinesis_progress.jsonl")
    .read_text()
    .splitlines()
]


def _with_lag(progress: dict, shards: dict, top: object = None) -> dict:
    out = copy.deepcopy(progress)
    out["sources"][0]["latestOffset"] = {"millisBehindLatest": top, "shards": shards}
    return out


def test_captured_progress_is_parsed():
    first, second = (parse_progress(p) for p in CAPTURED)
    assert first == {
        "batch_id": 0,
        "query": "b2b60778-9759-43c0-92aa-fc8c2038b28b",  # unnamed query: its id
        "num_input_rows": 3,
        "input_rows_per_s": 0.0,
        "processed_rows_per_s": 0.3,
        "batch_duration_ms": 10309,
        "source_lag_ms": 0,
    }
    assert (second["batch_id"], second["num_input_rows"], second["batch_duration_ms"]) == (
        1,
        2,
        971,
    )
    assert "records_behind" not in second  # Kinesis reports no record count behind the tip


def test_the_query_name_wins_over_its_id():
    named = dict(CAPTURED[0], name="enrich-flows")
    assert parse_progress(named)["query"] == "enrich-flows"


@pytest.mark.parametrize(
    ("shards", "top", "expected"),
    [
        ({"s/shardId-0": 1200, "s/shardId-1": 86_400_000}, 86_400_000, 86_400_000),
        ({"s/shardId-0": 5, "s/shardId-1": 7}, 1, 7),  # the max over shards, not the top value
        ({}, 42, 42),  # no per-shard values: the reported max
        ({"s/shardId-0": None}, None, None),
        ({"s/shardId-0": "12"}, None, None),  # not a number: unknown, not guessed
    ],
)
def test_source_lag_is_the_max_over_shards(shards, top, expected):
    assert parse_progress(_with_lag(CAPTURED[1], shards, top))["source_lag_ms"] == expected


def test_lag_is_read_from_the_event_string_form_too():
    # StreamingQueryProgress.sources[i].latestOffset is a JSON string, progress.json nests it
    sources = [{"latestOffset": json.dumps({"millisBehindLatest": 9, "shards": {"a": 9}})}]
    assert source_lag_ms(sources) == 9


@pytest.mark.parametrize(
    "sources",
    [
        None,
        [],
        [{"latestOffset": None}],  # a source that reports nothing (platform connectors)
        [{"latestOffset": "not json"}],
        [{"latestOffset": {"shardId-0": {"seq": "4958"}}}],  # some other source's offset
    ],
)
def test_unknown_lag_is_null(sources):
    assert source_lag_ms(sources) is None


def test_several_sources_take_the_largest_lag():
    sources = [
        {"latestOffset": {"millisBehindLatest": 3, "shards": {"a/1": 3}}},
        {"latestOffset": {"millisBehindLatest": 11, "shards": {"b/1": 11}}},
        {"latestOffset": None},
    ]
    assert source_lag_ms(sources) == 11


def test_nan_rates_omitted_by_spark_come_back_as_null():
    progress = {k: v for k, v in CAPTURED[0].items() if k != "inputRowsPerSecond"}
    progress.pop("batchDuration")
    parsed = parse_progress(progress)
    assert parsed["input_rows_per_s"] is None
    assert parsed["batch_duration_ms"] == 10305  # durationMs.triggerExecution


def test_listener_writes_one_metrics_line_per_event(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(console.METRICS_ENV, str(tmp_path / "metrics.jsonl"))
    listener = ProgressLogger()
    event = SimpleNamespace(progress=SimpleNamespace(json=json.dumps(CAPTURED[1])))
    listener.onQueryProgress(event)
    listener.onQueryProgress(SimpleNamespace(progress=SimpleNamespace(json="{broken")))
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"dredge_progress": parse_progress(CAPTURED[1])}
    ]
    assert capsys.readouterr().out == ""  # JSON is for machines: none on the console
    assert list(listener.collected) == [parse_progress(CAPTURED[1])]


def test_a_started_querys_batch_line_carries_the_lag_of_its_progress(capsys):
    listener = ProgressLogger()
    qid = uuid.UUID(int=0xAA)
    listener.onQueryStarted(SimpleNamespace(id=qid, name="lag-line"))
    batch = {"batch_id": 1, "lines_parsed": 2, "flows_final": 2, "flows_pending": 0,
             "quarantined": 0, "pct_both_attributed": 100.0, "duration_s": 0.971}  # fmt: skip
    console.emit_batch(batch, query="lag-line")
    assert capsys.readouterr().out == ""  # waits for the batch's progress
    progress = dict(_with_lag(CAPTURED[1], {"s/shardId-0": 4200}, 0), name="lag-line")
    listener.onQueryProgress(SimpleNamespace(progress=SimpleNamespace(json=json.dumps(progress))))
    assert capsys.readouterr().out == console.batch_line(batch, 4200) + "\n"
    assert console.batch_line(batch, 4200).endswith(", source lag 4.2 s")
    console.emit_batch({**batch, "batch_id": 2}, query="lag-line")  # its progress never comes
    listener.onQueryTerminated(SimpleNamespace(id=qid, runId=uuid.uuid4()))
    assert capsys.readouterr().out.startswith("batch 2: 2 lines")  # printed as the query ends


def test_wait_terminated_returns_once_the_listener_heard_of_the_query():
    listener = ProgressLogger()
    qid = "9f58bd44-fbf7-424e-944e-c3016af6a19f"  # this run of the query
    query = uuid.UUID("00000000-0000-0000-0000-000000000007")
    assert listener.wait_terminated(qid, 0.05) is False  # not yet
    listener.onQueryTerminated(
        SimpleNamespace(id=uuid.UUID("00000000-0000-0000-0000-000000000001"), runId=uuid.uuid4())
    )
    assert listener.wait_terminated(qid, 0.05) is False  # another query
    # an earlier run of the same query (restarted from its checkpoint: same id, new run id)
    listener.onQueryTerminated(SimpleNamespace(id=query, runId=uuid.uuid4()))
    assert listener.wait_terminated(qid, 0.05) is False
    # The event arrives on Spark's listener thread (here: this one) while the driver waits.
    # It is posted only once the driver is inside the condition's wait, and the driver waits
    # longer than the test may run: only the event's notification can end that wait.
    waiting = threading.Event()
    wait = listener._changed.wait

    def noting_wait(timeout: float | None = None) -> bool:
        waiting.set()
        return wait(timeout)

    listener._changed.wait = noting_wait
    woke: list[bool] = []
    driver = threading.Thread(
        target=lambda: woke.append(listener.wait_terminated(qid, 3600.0)), daemon=True
    )
    driver.start()
    assert waiting.wait(60), "the driver never waited"
    listener.onQueryTerminated(SimpleNamespace(id=query, runId=uuid.UUID(qid)))
    driver.join(60)
    assert woke == [True], "the driver's wait did not end on the event"
    assert listener.wait_terminated(qid, 0.0) is True  # remembered
