"""``dredge refresh-ownership``: apply inventory observations to the ownership table (SCD2).

    dredge refresh-ownership --conf conf/local.yaml [--snapshot PATH ...] [--inventory aws]
        [--ip-ranges FILE] [--vpc-cidrs FILE] [--every 5m]

Every flag but ``--conf``/``--set`` overrides a key of the config's ``refresh`` section.

Snapshots (files, or directories of files) and the live AWS sweep are applied in order of
``observed_at``. The CIDR-label table gets the label sources the run read (ip-ranges, VPC file,
the sweep's VPCs/subnets) plus ``internet``; labels of sources it did not read stay (a run that
reads none creates an internet-only table if there is none). Exit codes:
0 = everything applied; 1 = a partial failure (some account/region was unreachable: nothing
applied for it, its intervals stay open); 2 = rejected input (a stale or malformed snapshot;
nothing applied). With ``--every`` the job loops with jitter until SIGTERM/SIGINT, finishing
the current run first; a run that raises is logged and the loop goes on (exit 3 at shutdown if
the last run raised; a one-shot run that raises ends with its traceback).
"""

from __future__ import annotations

import argparse
import logging
import random
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import FrameType
from typing import Any

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from spark_jobs import config, console
from spark_jobs.session import build_session
from spark_jobs.sinks.delta import table_exists
from spark_jobs.sinks.ownership import (
    StaleObservationError,
    apply_observation,
    check_not_stale,
    write_cidr_labels,
)
from spark_jobs.sources.inventory import InventoryConfig, inventory_observation, sweep
from spark_jobs.sources.ownership import (
    LabelRow,
    SnapshotError,
    cidr_labels_df,
    internet_labels,
    list_snapshot_files,
    peek_observed_at,
    read_freshness,
    read_ip_ranges,
    read_snapshot_observation,
    read_vpc_cidrs,
)
from spark_jobs.transforms.ownership import Observation

log = logging.getLogger("dredge.refresh_ownership")
EXIT_OK, EXIT_PARTIAL, EXIT_REJECTED, EXIT_ERROR = 0, 1, 2, 3


@dataclass(frozen=True)
class RefreshOptions:
    """What one refresh reads: the ``refresh`` config section with the flags applied."""

    snapshots: tuple[str, ...] = ()
    inventory: InventoryConfig | None = None
    ip_ranges: str | None = None
    vpc_cidrs: str | None = None
    every_seconds: float | None = None
    jitter: float = 0.1
    max_runs: int = 0


def parse_duration(text: str) -> float:
    """A duration flag (a positive number with an optional ``s``/``m``/``h`` unit, seconds
    by default) as seconds; an argparse error otherwise."""
    seconds = config.duration_seconds(text)
    if seconds is None:
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (e.g. 30s, 5m, 1h)")
    return seconds


def _csv(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _parser() -> argparse.ArgumentParser:
    """Flags; those left out (None) take the config's ``refresh`` section."""
    p = argparse.ArgumentParser(prog="dredge refresh-ownership", description=__doc__.split("\n")[0])
    p.add_argument("--conf", required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--snapshot", action="append", metavar="PATH", help="refresh.snapshots")
    p.add_argument("--inventory", choices=["aws"], help="refresh.inventory")
    p.add_argument("--regions", type=_csv, help="refresh.regions (comma-separated)")
    p.add_argument("--accounts", type=_csv, help="refresh.accounts (comma-separated)")
    p.add_argument("--role-arn-template", help="refresh.role_arn_template")
    p.add_argument("--app-tags", type=_csv, help="refresh.app_tags (comma-separated)")
    p.add_argument("--cluster-tags", type=_csv, help="refresh.cluster_tags (comma-separated)")
    p.add_argument("--endpoint-url", help="refresh.endpoint_url")
    p.add_argument("--max-attempts", type=int, help="refresh.max_attempts")
    p.add_argument("--ip-ranges", help="refresh.ip_ranges")
    p.add_argument("--vpc-cidrs", help="refresh.vpc_cidrs")
    p.add_argument("--every", type=parse_duration, help="refresh.every (e.g. 5m)")
    p.add_argument("--once", action="store_true", help="one run, whatever refresh.every says")
    p.add_argument("--jitter", type=float, help="refresh.jitter")
    p.add_argument("--max-runs", type=int, help="refresh.max_runs: stop a loop after N runs")
    return p


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line (no config read yet)."""
    return _parser().parse_args(list(argv))


def options_for(args: argparse.Namespace, refresh: config.RefreshConfig) -> RefreshOptions:
    """The config's ``refresh`` section with every flag given on the command line applied;
    raises ValueError when the result reads nothing."""

    def pick(flag: Any, configured: Any) -> Any:
        return configured if flag is None else flag

    snapshots = tuple(pick(args.snapshot, refresh.snapshots))
    kind = pick(args.inventory, refresh.inventory)
    ip_ranges, vpc_cidrs = (
        pick(args.ip_ranges, refresh.ip_ranges),
        pick(args.vpc_cidrs, refresh.vpc_cidrs),
    )
    if not (snapshots or kind or ip_ranges or vpc_cidrs):
        raise ValueError(
            "nothing to do: give --snapshot, --inventory, --ip-ranges or --vpc-cidrs "
            "(or refresh.snapshots / inventory / ip_ranges / vpc_cidrs in the config)"
        )
    inventory = None
    if kind == "aws":
        inventory = InventoryConfig(
            regions=pick(args.regions, refresh.regions),
            accounts=pick(args.accounts, refresh.accounts),
            role_arn_template=pick(args.role_arn_template, refresh.role_arn_template),
            app_tags=pick(args.app_tags, refresh.app_tags),
            cluster_tags=pick(args.cluster_tags, refresh.cluster_tags),
            endpoint_url=pick(args.endpoint_url, refresh.endpoint_url),
            max_attempts=pick(args.max_attempts, refresh.max_attempts),
        )
    every = pick(args.every, refresh.every_seconds)
    jitter, max_runs = pick(args.jitter, refresh.jitter), pick(args.max_runs, refresh.max_runs)
    attempts = inventory.max_attempts if inventory is not None else refresh.max_attempts
    problem = config.refresh_problem(jitter, max_runs, attempts)
    if problem:
        key, why = problem
        raise ValueError(f"--{key.replace('_', '-')} {why}")
    return RefreshOptions(
        snapshots, inventory, ip_ranges, vpc_cidrs, None if args.once else every,
        jitter, max_runs,
    )  # fmt: skip


def _snapshot_groups(paths: Sequence[str], freshness: datetime | None) -> dict[datetime, list[str]]:
    """Snapshot files grouped by observed_at. Files found in a directory that are older than
    the table are skipped (already applied); files named explicitly are kept, to be rejected."""
    groups: dict[datetime, list[str]] = {}
    for given in paths:
        files = list_snapshot_files(given)
        for f in files:
            at = peek_observed_at(f)
            if f != given and freshness is not None and at < freshness:
                log.info("skipping %s: observed_at %s is before the table's freshness", f, at)
                continue
            groups.setdefault(at, []).append(f)
    return groups


def run_once(spark: SparkSession, opts: RefreshOptions, ownership: str, labels: str) -> int:
    """One refresh; returns the exit code."""
    freshness = read_freshness(spark, ownership)
    try:
        groups = _snapshot_groups(opts.snapshots, freshness)
        observations: list[Observation] = [
            read_snapshot_observation(spark, files) for _, files in sorted(groups.items())
        ]
    except (SnapshotError, OSError) as err:
        log.error("rejected snapshot: %s", err)
        return EXIT_REJECTED
    label_rows: list[LabelRow] = []
    failed_regions: set[str] = set()
    code = EXIT_OK
    if opts.inventory is not None:
        result = sweep(opts.inventory)
        observations.append(inventory_observation(spark, result))
        label_rows += result.labels
        failed_regions = {s.region for s in result.failed}
        for scope in result.failed:
            log.error(
                "PARTIAL FAILURE %s/%s: nothing applied for it, its intervals stay open (%s)",
                scope.account_id, scope.region, scope.error,
            )  # fmt: skip
            code = EXIT_PARTIAL
    observations.sort(key=lambda o: o.observed_at)
    try:
        for obs in observations[:1]:  # later ones are newer by construction
            check_not_stale(obs.observed_at, freshness, obs.label)
        for obs in observations:
            apply_observation(spark, ownership, obs)
    except StaleObservationError as err:
        log.error("rejected: %s", err)
        return EXIT_REJECTED
    label_rows += read_ip_ranges(opts.ip_ranges) if opts.ip_ranges else []
    label_rows += read_vpc_cidrs(opts.vpc_cidrs) if opts.vpc_cidrs else []
    keep = labels_to_keep(opts, failed_regions)
    if keep is not None:
        write_cidr_labels(cidr_labels_df(spark, label_rows + internet_labels()), labels, keep)
    elif not table_exists(spark, labels):  # `dredge stream` needs the table, even internet-only
        write_cidr_labels(cidr_labels_df(spark, internet_labels()), labels)
    return code


def labels_to_keep(opts: RefreshOptions, failed_regions: set[str]) -> Column | None:
    """Which existing CIDR labels a run keeps; None when it refreshes no label source.

    A run replaces only the label kinds it read (``aws_service`` from ip-ranges, ``vpc`` and
    ``subnet`` from a VPC file or the sweep): ``--every 5m --inventory aws`` must not drop the
    ip-ranges labels of an earlier run. The VPC labels of a region where some scope failed are
    kept too (a failed scope changes nothing); a VPC deleted there goes at the next clean sweep.
    """
    sweeps_vpcs = opts.inventory is not None and opts.inventory.include_vpc_cidrs
    replaced = {"internet"}
    replaced |= {"aws_service"} if opts.ip_ranges else set()
    replaced |= {"vpc", "subnet"} if opts.vpc_cidrs or sweeps_vpcs else set()
    if replaced == {"internet"}:
        return None
    keep = ~F.col("kind").isin(*sorted(replaced))
    if failed_regions:
        is_vpc = F.col("kind").isin("vpc", "subnet")
        keep = keep | (is_vpc & F.col("region").isin(*sorted(failed_regions)))
    return keep


def run_loop(run: Callable[[], int], every: float, jitter: float, max_runs: int) -> int:
    """Call ``run`` every ``every`` seconds (+- ``jitter`` fraction) until SIGTERM/SIGINT.

    A run that raises (a concurrent Delta commit, a transient AWS error) is logged with its
    traceback and counted, and the loop goes on; the exit code is the last run's, EXIT_ERROR
    if it raised.
    """
    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping after the current run", signum)
        stop.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    code, runs, errors = EXIT_OK, 0, 0
    try:
        while not stop.is_set():
            runs += 1
            try:
                code = run()
            except Exception:
                errors += 1
                code = EXIT_ERROR
                log.exception("run %d failed (%d of %d runs so far); next run on schedule",
                              runs, errors, runs)  # fmt: skip
            if max_runs and runs >= max_runs:
                break
            stop.wait(every * (1 + random.uniform(-jitter, jitter)))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("refresh loop stopped after %d runs, %d failed; exit %d", runs, errors, code)
    return code


def main(argv: Sequence[str]) -> int:
    """Entry point of ``dredge refresh-ownership``."""
    if not logging.getLogger().handlers:  # a caller's own logging (the demo's) stays as set
        console.configure_logging()
    parser = _parser()
    args = parser.parse_args(list(argv))
    overrides: dict[str, Any] = {}
    for item in args.set:
        overrides = config._merge(overrides, config.parse_override(item))
    try:  # a bad config or flag value is a usage error: exit 2, like a bad flag
        cfg = config.load(args.conf, overrides)
        opts = options_for(args, cfg.refresh)
    except ValueError as err:  # ConfigError included
        parser.error(str(err))
    spark = build_session(cfg.spark)
    ownership, labels = cfg.paths.resolve("ownership"), cfg.paths.resolve("cidr_labels")

    def run() -> int:
        return run_once(spark, opts, ownership, labels)

    if opts.every_seconds is None:
        return run()
    return run_loop(run, opts.every_seconds, opts.jitter, opts.max_runs)
