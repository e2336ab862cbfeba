"""``dredge refresh-ownership``: apply inventory observations to the ownership table (SCD2).

    dredge refresh-ownership --conf conf/local.yaml [--snapshot PATH ...] [--inventory aws]
        [--ip-ranges FILE] [--vpc-cidrs FILE] [--every 5m]

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
import re
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import FrameType
from typing import Any

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from spark_jobs import config
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
_UNITS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class RefreshOptions:
    """What one refresh reads (until the lead gives it a config section)."""

    snapshots: tuple[str, ...] = ()
    inventory: InventoryConfig | None = None
    ip_ranges: str | None = None
    vpc_cidrs: str | None = None
    every_seconds: float | None = None
    jitter: float = 0.1
    max_runs: int = 0


def parse_duration(text: str) -> float:
    """``'90'``, ``'30s'``, ``'5m'``, ``'1h'`` -> seconds (> 0)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (e.g. 30s, 5m, 1h)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def _csv(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, RefreshOptions]:
    """CLI flags -> (namespace with conf/overrides, options)."""
    p = argparse.ArgumentParser(prog="dredge refresh-ownership", description=__doc__.split("\n")[0])
    p.add_argument("--conf", required=True)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--snapshot", action="append", default=[], metavar="PATH")
    p.add_argument("--inventory", choices=["aws"])
    p.add_argument("--regions", type=_csv, default=("us-east-1",))
    p.add_argument("--accounts", type=_csv, default=())
    p.add_argument("--role-arn-template", default=InventoryConfig.role_arn_template)
    p.add_argument("--app-tags", type=_csv, default=InventoryConfig.app_tags)
    p.add_argument("--cluster-tags", type=_csv, default=InventoryConfig.cluster_tags)
    p.add_argument("--endpoint-url")
    p.add_argument("--max-attempts", type=int, default=InventoryConfig.max_attempts)
    p.add_argument("--ip-ranges")
    p.add_argument("--vpc-cidrs")
    p.add_argument("--every", type=parse_duration)
    p.add_argument("--jitter", type=float, default=0.1)
    p.add_argument("--max-runs", type=int, default=0, help="stop a loop after N runs (0: never)")
    args = p.parse_args(list(argv))
    if not (args.snapshot or args.inventory or args.ip_ranges or args.vpc_cidrs):
        p.error("nothing to do: give --snapshot, --inventory, --ip-ranges or --vpc-cidrs")
    inventory = None
    if args.inventory == "aws":
        inventory = InventoryConfig(
            regions=args.regions, accounts=args.accounts, role_arn_template=args.role_arn_template,
            app_tags=args.app_tags, cluster_tags=args.cluster_tags,
            endpoint_url=args.endpoint_url, max_attempts=args.max_attempts,
        )  # fmt: skip
    opts = RefreshOptions(
        tuple(args.snapshot), inventory, args.ip_ranges, args.vpc_cidrs,
        args.every, args.jitter, args.max_runs,
    )  # fmt: skip
    return args, opts


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
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args, opts = parse_args(argv)
    overrides: dict[str, Any] = {}
    for item in args.set:
        overrides = config._merge(overrides, config.parse_override(item))
    cfg = config.load(args.conf, overrides)
    spark = build_session(cfg.spark)
    ownership, labels = cfg.paths.resolve("ownership"), cfg.paths.resolve("cidr_labels")

    def run() -> int:
        return run_once(spark, opts, ownership, labels)

    if opts.every_seconds is None:
        return run()
    return run_loop(run, opts.every_seconds, opts.jitter, opts.max_runs)
