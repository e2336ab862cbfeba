"""The console: a readable line per batch, the metrics as JSON lines in a file."""

from __future__ import annotations

import io
import json
import logging

import pytest

from spark_jobs import console
from spark_jobs.console import Console, MetricsSink, batch_line, format_ms

# a batch writer's metrics (keys as FlowBatchWriter reports them; values from a demo batch)
BATCH = {
    "batch_id": 0,
    "records_in": 2299,
    "lines_parsed": 20293,
    "quarantined": 200,
    "flows_final": 12123,
    "flows_pending": 7970,
    "both_attributed": 8370,
    "pct_both_attributed": 69.04,
    "duration_s": 68.347,
    "phase_s": {"stage": 34.441},
}
LINE = (
    "batch 0: 20,293 lines in 1 min 08 s, 294 flows/s, 69.0% attributed, 7,970 pending, "
    "200 quarantined"
)


def test_batch_line_reads_the_writers_metrics():
    assert batch_line(BATCH) == LINE
    assert batch_line(BATCH, lag_ms=0) == LINE + ", source lag 0 ms"
    assert batch_line(BATCH, lag_ms=86_400_000).endswith(", source lag 1440 min 00 s")


def test_flows_per_second_counts_final_and_pending_flows():
    held_only = {**BATCH, "batch_id": 1, "lines_parsed": 0, "flows_final": 7970,
                 "flows_pending": 0, "quarantined": 0, "pct_both_attributed": 61.92,
                 "duration_s": 25.045}  # fmt: skip
    # a batch of no new lines that attributed the 7,970 flows it held: 7,970 / 25.045 s
    assert batch_line(held_only, lag_ms=1500) == (
        "batch 1: 0 lines in 25.0 s, 318 flows/s, 61.9% attributed, 0 pending, "
        "0 quarantined, source lag 1.5 s"
    )


def test_a_batch_without_final_flows_or_with_missing_keys_still_reads():
    all_pending = {**BATCH, "flows_final": 0, "pct_both_attributed": None}
    assert ", no final flows, " in batch_line(all_pending)
    assert batch_line({"batch_id": 3, "flows_final": 4}) == (
        "batch 3: ? lines, ? flows/s, no final flows, ? pending, ? quarantined"
    )


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0 ms"), (999, "999 ms"), (1000, "1.0 s"), (59_949, "59.9 s"), (245_000, "4 min 05 s")],
)
def test_durations_read_in_the_unit_that_fits(ms, text):
    assert format_ms(ms) == text


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_metrics_sink_appends_flushed_json_lines(tmp_path):
    path = tmp_path / "run" / "metrics.jsonl"  # its folder is created
    first = MetricsSink(path)
    first.write("dredge_batch", BATCH)
    assert _lines(path) == [{"dredge_batch": BATCH}]  # flushed: readable while the job runs
    second = MetricsSink(path)  # a restarted driver appends to the same file
    second.write("dredge_progress", {"batch_id": 0, "source_lag_ms": 5})
    first.close()
    second.close()
    assert _lines(path) == [
        {"dredge_batch": BATCH},
        {"dredge_progress": {"batch_id": 0, "source_lag_ms": 5}},
    ]


def test_a_failed_metrics_write_is_logged_once_and_never_raised(tmp_path, caplog):
    sink = MetricsSink(tmp_path)  # a folder: cannot be opened as a file
    with caplog.at_level(logging.WARNING, logger="dredge.console"):
        sink.write("dredge_batch", BATCH)
        sink.write("dredge_batch", BATCH)
    assert [r.getMessage().startswith(f"metrics file {tmp_path}") for r in caplog.records] == [True]


def _console(tmp_path) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    con = Console(out)
    con.sink = MetricsSink(tmp_path / "m.jsonl")
    return con, out


def test_without_a_listener_the_line_is_printed_at_once(tmp_path):
    con, out = _console(tmp_path)
    con.emit_batch(BATCH, query="dredge-enrich")
    assert out.getvalue() == LINE + "\n"
    assert _lines(tmp_path / "m.jsonl") == [{"dredge_batch": BATCH}]


def test_a_watched_querys_line_waits_for_its_progress_and_carries_the_lag(tmp_path):
    con, out = _console(tmp_path)
    con.query_started("dredge-enrich")
    con.emit_batch(BATCH, query="dredge-enrich")
    assert out.getvalue() == ""  # the lag comes with the progress, after the batch
    other = {"batch_id": 0, "query": "bench-rate", "source_lag_ms": 9}
    con.emit_progress(other)  # another query's batch 0
    assert out.getvalue() == ""
    progress = {"batch_id": 0, "query": "dredge-enrich", "source_lag_ms": 2500}
    con.emit_progress(progress)
    assert out.getvalue() == LINE + ", source lag 2.5 s\n"
    assert _lines(tmp_path / "m.jsonl") == [
        {"dredge_batch": BATCH},
        {"dredge_progress": other},
        {"dredge_progress": progress},
    ]


def test_lines_whose_progress_never_came_are_printed_when_the_query_ends(tmp_path):
    con, out = _console(tmp_path)
    con.query_started("q")
    for batch_id in range(console.WAITING_MAX + 2):
        con.emit_batch({**BATCH, "batch_id": batch_id}, query="q")
    # more waiting than a progress can be behind: the oldest are printed without a lag
    assert [line.split(":")[0] for line in out.getvalue().splitlines()] == ["batch 0", "batch 1"]
    con.query_ended("q")
    printed = [line.split(":")[0] for line in out.getvalue().splitlines()]
    assert printed == [f"batch {i}" for i in range(console.WAITING_MAX + 2)]
    con.emit_batch({**BATCH, "batch_id": 99}, query="q")  # no longer watched: at once
    assert out.getvalue().splitlines()[-1].startswith("batch 99: ")


def test_the_metrics_file_comes_from_the_environment_unless_configured(tmp_path, monkeypatch):
    con = Console(io.StringIO())
    con.emit_batch(BATCH)  # no file configured: nothing written anywhere
    monkeypatch.setenv(console.METRICS_ENV, str(tmp_path / "env.jsonl"))
    con.emit_batch(BATCH)
    con.sink = MetricsSink(tmp_path / "flag.jsonl")
    con.emit_batch({**BATCH, "batch_id": 1})
    con.close()
    assert _lines(tmp_path / "env.jsonl") == [{"dredge_batch": BATCH}]
    assert _lines(tmp_path / "flag.jsonl") == [{"dredge_batch": {**BATCH, "batch_id": 1}}]


def test_the_module_functions_use_the_process_console(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(console.METRICS_ENV, str(tmp_path / "m.jsonl"))
    console.emit_batch(BATCH, query="not-watched")
    console.emit_progress({"batch_id": 0, "query": "not-watched", "source_lag_ms": 1})
    assert capsys.readouterr().out == LINE + "\n"
    assert [next(iter(x)) for x in _lines(tmp_path / "m.jsonl")] == [
        "dredge_batch",
        "dredge_progress",
    ]


def test_metrics_json_flag_parses():
    import argparse

    parser = argparse.ArgumentParser()
    console.add_arguments(parser)
    assert parser.parse_args(["--metrics-json", "m.jsonl"]).metrics_json == "m.jsonl"
    assert parser.parse_args([]).metrics_json is None


def test_logging_keeps_py4j_quiet_and_dredge_at_info(monkeypatch):
    for name in ("py4j", "dredge", "spark_jobs"):
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    logging.getLogger("py4j").setLevel(logging.DEBUG)  # as a notebook's basicConfig may leave it
    console.configure_logging()
    assert logging.getLogger("py4j.clientserver").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("dredge.batch").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("spark_jobs.sinks.ownership").getEffectiveLevel() == logging.INFO


def test_a_restarted_query_stays_watched_when_its_last_run_ends_late(tmp_path):
    con, out = _console(tmp_path)
    con.query_started("q")  # the first run
    con.query_started("q")  # the same query restarted before the first run's end was heard
    con.query_ended("q")  # that end
    con.emit_batch(BATCH, query="q")
    assert out.getvalue() == ""  # still waits for the lag
    con.emit_progress({"batch_id": 0, "query": "q", "source_lag_ms": 0})
    assert out.getvalue() == LINE + ", source lag 0 ms\n"
