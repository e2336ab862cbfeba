"""Side-by-side comparison of an aggregate computed by Druid and by Spark (exact match)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Comparison:
    """One aggregate from both engines.

    Attributes:
        name: what the aggregate is.
        columns: column names of the rows.
        druid: Druid's rows.
        spark: Spark's rows over the Delta table, same order.
    """

    name: str
    columns: tuple[str, ...]
    druid: list[Row]
    spark: list[Row]

    @property
    def is_equal(self) -> bool:
        """Exactly the same rows in the same order."""
        return self.druid == self.spark

    def differences(self) -> list[str]:
        """Rows only one side has (empty when equal; order differences are reported too)."""
        only_druid = [r for r in self.druid if r not in self.spark]
        only_spark = [r for r in self.spark if r not in self.druid]
        out = [f"only in Druid: {r}" for r in only_druid]
        out += [f"only in Spark: {r}" for r in only_spark]
        if not out and not self.is_equal:
            out.append("same rows, different order")
        return out


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "null"
    if column.endswith("_ms") and isinstance(value, int):
        return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
    return str(value)


def _render(rows: Sequence[Row], columns: Sequence[str]) -> list[str]:
    return [" ".join(_cell(v, c) for v, c in zip(r, columns, strict=True)) for r in rows]


def side_by_side(comparison: Comparison) -> str:
    """A text table: Druid's rows on the left, Spark's on the right, '!' on differing lines."""
    left = _render(comparison.druid, comparison.columns)
    right = _render(comparison.spark, comparison.columns)
    header = " ".join(comparison.columns)
    width = max([len(header), len("Druid"), *map(len, left)])
    verdict = "EQUAL" if comparison.is_equal else "DIFFERENT"
    lines = [
        f"== {comparison.name}: {verdict} ({len(left)} Druid rows, {len(right)} Spark rows)",
        f"  {'Druid'.ljust(width)} | Spark (Delta)",
        f"  {header.ljust(width)} | {header}",
    ]
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else ""
        b = right[i] if i < len(right) else ""
        mark = " " if a == b else "!"
        lines.append(f"{mark} {a.ljust(width)} | {b}")
    return "\n".join(lines)
