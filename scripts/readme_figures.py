"""Build the README's figures table from the benchmark results (bench/results/*.json).

    .venv/bin/python scripts/readme_figures.py            # print the table
    .venv/bin/python scripts/readme_figures.py --write    # put it into README.md

One row per result file: what the benchmark ran, its headline figures and whether it
measured the same code as bench.pipeline; every value is read from the file (docs/performance.md says how each figure is
reproduced and what it means). ``--write`` replaces what lies between the README's
``<!-- figures:start -->`` and ``<!-- figures:end -->`` lines. A result file that is missing,
unreadable, lacks a figure, or has no row here is an error naming the file (and the key), so
the table cannot drift from bench/results: tests/unit/test_readme_figures.py checks the README.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
START = "<!-- figures:start -->"
END = "<!-- figures:end -->"
HEADER = ("benchmark", "what it runs", "headline figures", "code measured")
# The commit a figure measured stays in its result file: the README names no hashes. The
# table says whether a figure measured the same code as bench.pipeline's run, the newest.
REFERENCE = "pipeline"


class FiguresError(Exception):
    """A result file or the README cannot give the table; the message names the file."""


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


class Result:
    """One result file's JSON, with lookups that fail naming the file and the key."""

    def __init__(self, path: Path) -> None:
        self.name = _shown(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise FiguresError(
                f"{self.name}: missing (run `make bench`, or "
                f"`.venv/bin/python -m bench {path.stem}` for this one)"
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise FiguresError(f"{self.name}: cannot be read ({e})") from None
        except json.JSONDecodeError as e:
            raise FiguresError(f"{self.name}: not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise FiguresError(f"{self.name}: not a JSON object")
        self.data: dict[str, Any] = data

    def get(self, key: str) -> Any:
        """The value at a dotted ``key`` (list items by index: ``runs.0.seconds``)."""
        value: Any = self.data
        for part in key.split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                raise FiguresError(f"{self.name}: no `{key}`")
        return value

    def num(self, key: str) -> float:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FiguresError(f"{self.name}: `{key}` is {value!r}, not a number")
        return float(value)

    def items(self, key: str) -> list[str]:
        """The keys of the list at ``key``, one per item (``runs.0`` ...); it may not be empty."""
        value = self.get(key)
        if not isinstance(value, list) or not value:
            raise FiguresError(f"{self.name}: `{key}` is {value!r}, not a non-empty list")
        return [f"{key}.{i}" for i in range(len(value))]

    def measured(self, reference: str | None) -> str:
        """Whether this result measured the commit ``reference`` did (see :data:`REFERENCE`)."""
        commit = self.data.get("commit")
        if not commit:
            return "not recorded"
        shown = "as bench.pipeline" if commit == reference else "other code"
        return shown + (" + uncommitted changes" if self.data.get("code_dirty") else "")


def _int(value: float) -> str:
    return f"{round(value):,}"


def _sec(value: float) -> str:
    return f"{value:.1f}"


def _ratio(value: float) -> str:
    return f"{value:g}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


# Each returns (what it runs, headline figures) for one result file.
Row = Callable[[Result], tuple[str, str]]


def pipeline(r: Result) -> tuple[str, str]:
    runs = r.items("dredge_backfill")
    intervals = " / ".join(_int(r.num(f"{k}.ownership_intervals")) for k in runs)
    rates = " / ".join(_int(r.num(f"{k}.flows_per_s")) for k in runs)
    return (
        f"backfill of {_int(r.num('lines'))} lines, Delta + Kafka, {intervals} ownership intervals",
        f"{rates} flows/s; plain split {_int(r.num('plain_split_to_parquet.flows_per_s'))} "
        f"flows/s, ratio {_ratio(r.num('ratio_vs_plain'))}; the two sinks alone ratio "
        f"{_ratio(r.num('sinks_alone.ratio_vs_plain'))}; ownership slowdown "
        f"x{_ratio(r.num('slowdown_smallest_to_largest_ownership'))}",
    )


def parts(r: Result) -> tuple[str, str]:
    def rate(part: str) -> str:
        return f"{_int(r.num(f'flows_per_s.{part}'))}"

    return (
        f"each part of a backfill alone on {_int(r.num('lines'))} lines (noop sinks, cached "
        "inputs)",
        f"plain split {rate('plain_split_to_parquet')}, read + parse {rate('read_parse_noop')}, "
        f"attribution from the cached parse {rate('attribution_noop_from_cached_parse')}, "
        f"Delta write {rate('delta_write_from_cache')}, Kafka {rate('kafka_publish_from_written_files')}, "
        f"whole backfill {rate('dredge_backfill')} lines/s",
    )


def settings(r: Result) -> tuple[str, str]:
    medians = r.get("median_s")
    if not isinstance(medians, dict) or not medians:
        raise FiguresError(f"{r.name}: `median_s` is {medians!r}, not a non-empty object")
    shown = []
    for key, by_value in medians.items():  # setting names hold dots: no dotted lookups here
        if not isinstance(by_value, dict) or not by_value:
            raise FiguresError(f"{r.name}: `median_s` of {key} is {by_value!r}")
        for value, seconds in by_value.items():
            if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                raise FiguresError(f"{r.name}: `median_s` of {key}={value} is {seconds!r}")
        values = " vs ".join(f"{v} {_sec(sec)} s" for v, sec in by_value.items())
        shown.append(f"`{key.removeprefix('spark.sql.')}` {values}")
    return (
        f"a {_int(r.num('minutes'))}-minute backfill with each session setting at its value "
        "and at the other value, alternated",
        "; ".join(shown),
    )


def stream(r: Result) -> tuple[str, str]:
    return (
        f"{_int(r.num('flow_lines'))} flows in {_int(r.num('records'))} records, "
        f"{_int(r.num('shards'))} shards, the whole job (availableNow)",
        f"{_int(r.num('dredge_stream.flows_per_s'))} flows/s; `dredge backfill` of the same "
        f"lines {_int(r.num('dredge_backfill.flows_per_s'))} flows/s, ratio "
        f"{_ratio(r.num('ratio_vs_backfill'))}; boto3 drain "
        f"{_int(r.num('boto3_drain.flows_per_s'))} flows/s, ratio "
        f"{_ratio(r.num('ratio_vs_boto3'))}",
    )


def latency(r: Result) -> tuple[str, str]:
    return (
        f"{_ratio(r.num('rate_flows_per_s'))} flows/s for {_ratio(r.num('seconds'))} s, "
        f"{_int(r.num('shards'))} shards, {r.get('trigger')} trigger",
        f"arrival -> Delta p50 / p95 {_sec(r.num('delta_latency_s.p50'))} / "
        f"{_sec(r.num('delta_latency_s.p95'))} s; -> Kafka "
        f"{_sec(r.num('kafka_latency_s.p50'))} / {_sec(r.num('kafka_latency_s.p95'))} s; "
        f"median batch {_sec(r.num('batch_duration_s.p50'))} s",
    )


def latency_floor(r: Result) -> tuple[str, str]:
    return (
        f"{_ratio(r.num('rate_flows_per_s'))} flows/s for {_ratio(r.num('seconds'))} s: raw "
        "Kinesis records appended to Delta (no processing); Spark's rate source -> Delta",
        f"Kinesis -> Delta p50 / p95 {_sec(r.num('delta_latency_s.p50'))} / "
        f"{_sec(r.num('delta_latency_s.p95'))} s; rate -> Delta "
        f"{_sec(r.num('rate_source.delta_latency_s.p50'))} / "
        f"{_sec(r.num('rate_source.delta_latency_s.p95'))} s",
    )


def parse(r: Result) -> tuple[str, str]:
    return (
        f"decode + parse of {_int(r.num('lines'))} lines to a noop sink",
        f"{_int(r.num('results.decode_parse.lines_per_s'))} lines/s; read.text + split "
        f"{_int(r.num('results.read_text_split.lines_per_s'))}, ratio "
        f"{_ratio(r.num('decode_parse_vs_split'))}; parse alone "
        f"{_int(r.num('results.parse.lines_per_s'))}",
    )


def kinesis(r: Result) -> tuple[str, str]:
    return (
        f"the source alone, {_int(r.num('records'))} records, {_int(r.num('shards'))} shards",
        f"dredge-kinesis {_int(r.num('dredge_kinesis.rows_per_s'))} rows/s, naive driver scan "
        f"{_int(r.num('naive_driver_scan.rows_per_s'))}, boto3 {_int(r.num('boto3.rows_per_s'))}; "
        f"driver `latestOffset` share {_pct(r.num('dredge_kinesis.driver_latest_offset_share'))} "
        f"vs {_pct(r.num('naive_driver_scan.driver_latest_offset_share'))}",
    )


def ownership(r: Result) -> tuple[str, str]:
    runs = r.items("results")
    return (
        f"ownership {r.get('scenario')}",
        "; ".join(
            f"N = {_int(r.num(f'{k}.ips'))}: refresh {_sec(r.num(f'{k}.refresh_s'))} s, "
            f"the same observation again {_sec(r.num(f'{k}.rerun_noop_s'))} s"
            for k in runs
        ),
    )


def dq_sample(r: Result) -> tuple[str, str]:
    return (
        f"Great Expectations on a {_int(r.num('rows'))}-row batch, {_int(r.num('checks'))} checks",
        f"{_sec(r.num('median_seconds'))} s per validation (median of "
        f"{len(r.items('seconds'))} runs)",
    )


ROWS: dict[str, Row] = {  # result file stem -> its row, in the table's order
    "pipeline": pipeline,
    "parts": parts,
    "settings": settings,
    "stream": stream,
    "latency": latency,
    "latency_floor": latency_floor,
    "parse": parse,
    "kinesis": kinesis,
    "ownership": ownership,
    "dq_sample": dq_sample,
}


def build_table(results: Path = RESULTS) -> str:
    """The figures table (markdown, one line per row, ending in a newline)."""
    unknown = sorted(p.name for p in results.glob("*.json") if p.stem not in ROWS)
    if unknown:
        raise FiguresError(
            f"{_shown(results)}: no row for {', '.join(unknown)} in scripts/readme_figures.py "
            "(add one to ROWS)"
        )
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    reference = Result(results / f"{REFERENCE}.json").data.get("commit")
    for stem, row in ROWS.items():
        result = Result(results / f"{stem}.json")
        runs, figures = row(result)
        lines.append(f"| `bench.{stem}` | {runs} | {figures} | {result.measured(reference)} |")
    return "\n".join(lines) + "\n"


def _bounds(text: str, name: str) -> tuple[int, int]:
    """Where the block's content starts and ends in ``text``."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == START]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise FiguresError(f"{name}: needs one `{START}` line followed by one `{END}` line")
    head = sum(len(line) for line in lines[: starts[0] + 1])
    return head, sum(len(line) for line in lines[: ends[0]])


def readme_block(text: str, name: str = "README.md") -> str:
    """What the README holds between its figures markers."""
    head, tail = _bounds(text, name)
    return text[head:tail]


def with_table(text: str, table: str, name: str = "README.md") -> str:
    """``text`` with its figures block replaced by ``table``."""
    head, tail = _bounds(text, name)
    return text[:head] + table + text[tail:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="replace the README's block")
    parser.add_argument("--results", type=Path, default=RESULTS, help="bench/results folder")
    parser.add_argument("--readme", type=Path, default=README, help="the README to write")
    args = parser.parse_args(argv)
    try:
        table = build_table(args.results)
        if not args.write:
            sys.stdout.write(table)
            return 0
        name = _shown(args.readme)
        try:
            text = args.readme.read_text()
        except OSError as e:
            raise FiguresError(f"{name}: cannot be read ({e})") from None
        new = with_table(text, table, name)
        if new != text:
            args.readme.write_text(new)
        print(f"{name}: figures table {'updated' if new != text else 'already current'}")
        return 0
    except FiguresError as e:
        print(f"readme_figures: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
