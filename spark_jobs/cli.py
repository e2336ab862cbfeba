"""The ``dredge`` command. Each subcommand lives in ``spark_jobs.jobs`` and is imported only
when chosen, so ``dredge --help`` starts no JVM."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module in spark_jobs.jobs, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "smoke": ("smoke", "run a tiny Kinesis -> Spark -> Delta + Kafka pipeline on local services"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dredge`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="dredge",
        description="Dredge: real-time VPC flow-log attribution on Spark.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, text) in COMMANDS.items():
        sub.add_parser(name, help=text, add_help=False)
    if not args or args[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        parser.error(f"unknown command {name!r} (choose from {', '.join(COMMANDS)})")
    module = importlib.import_module(f"spark_jobs.jobs.{COMMANDS[name][0]}")
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
