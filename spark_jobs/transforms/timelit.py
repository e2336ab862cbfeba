"""Timestamp literals that mean the same instant whatever the driver's local time zone.

PySpark turns a *naive* ``datetime`` literal into an instant with the Python process's local
time zone (``time.mktime``), not the session's; Dredge's naive datetimes mean UTC. So every
timestamp literal goes through :func:`utc_lit`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import Column
from pyspark.sql import functions as F


def utc_lit(value: datetime | None) -> Column:
    """A ``timestamp`` literal for ``value`` (naive = UTC); null for None."""
    if value is None:
        return F.lit(None).cast("timestamp")
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return F.lit(aware.astimezone(UTC)).cast("timestamp")
