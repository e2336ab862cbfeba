"""The ``dredge`` command. Each subcommand lives in ``spark_jobs.jobs`` and is imported only
when chosen, so ``dredge --help`` starts no JVM."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module in spark_jobs.jobs, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "stream": ("enrich_flows", "main_stream", "Kinesis -> attribution -> Delta + Kafka"),
    "backfill": ("enrich_flows", "main_backfill", "flow-log files -> the same job, availableNow"),
    "refresh-ownership": ("refresh_ownership", "main", "apply inventory observations (SCD2)"),
    "simulate": ("simulate", "main", "simulate a fleet: flows, inventory, ground truth"),
    "dq": ("dq", "main", "Great Expectations checks on a Delta table"),
    "demo": ("demo", "main", "the end-to-end demo on local services, with a report"),
    "smoke": ("smoke", "main", "a tiny Kinesis -> Spark -> Delta + Kafka check"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dredge`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="dredge",
        description="Dredge: real-time VPC flow-log attribution on Spark.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, _, text) in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    if not args or args[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r} (choose from {', '.join(COMMANDS)})")
    module_name, func, _ = COMMANDS[name]
    module = importlib.import_module(f"spark_jobs.jobs.{module_name}")
    return int(getattr(module, func)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
