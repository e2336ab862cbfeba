"""The demo report: PNG charts (matplotlib, Agg) and one HTML page, from small pandas frames
that the demo job aggregated with Spark. No Spark here."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: object, path: Path) -> str:
    fig.tight_layout()  # type: ignore[attr-defined]
    fig.savefig(path, dpi=100)  # type: ignore[attr-defined]
    _plt().close(fig)
    return path.name


def chart_accuracy(counts: pd.DataFrame, out: Path) -> str:
    """Grouped bars: flow sides per outcome, Dredge vs the naive current-owner join."""
    plt = _plt()
    pivot = counts.pivot_table(index="outcome", columns="method", values="sides", fill_value=0)
    fig, ax = plt.subplots(figsize=(7, 4))
    pivot.plot.bar(ax=ax, rot=0)
    ax.set_title("Attribution accuracy against the ground truth (flow sides)")
    ax.set_ylabel("flow sides")
    return _save(fig, out / "accuracy.png")


def chart_cross_region(pairs: pd.DataFrame, out: Path) -> str:
    """Horizontal bars: top cross-region app pairs by bytes."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [
        f"{r.src_app} ({r.src_region}) -> {r.dst_app} ({r.dst_region})" for r in pairs.itertuples()
    ]
    ax.barh(labels[::-1], (pairs["bytes"] / 1e6).tolist()[::-1])
    ax.set_xlabel("MB")
    ax.set_title("Top cross-region app pairs")
    return _save(fig, out / "cross_region_pairs.png")


def region_az_panels(by_minute: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per source region (sorted), MB per minute with a column per AZ (sorted): the layers of
    one stacked-area panel. A minute in which an AZ sent nothing is 0, so the layers stack.

    Needs ``minute, src_region, src_az, bytes`` (one row per minute, region and AZ).
    """
    panels: dict[str, pd.DataFrame] = {}
    for region, part in by_minute.groupby("src_region", sort=True):
        mb = part.pivot_table(
            index="minute", columns="src_az", values="bytes", aggfunc="sum", fill_value=0
        )
        panels[str(region)] = (mb / 1e6).sort_index().sort_index(axis="columns")
    return panels


def chart_bytes_over_time(by_minute: pd.DataFrame, out: Path) -> str:
    """Small multiples: one panel per source region on a shared MB scale, its AZs as stacked
    areas (a line for every region and AZ on one chart cannot be told apart)."""
    plt = _plt()
    panels = region_az_panels(by_minute)
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(8, 2.2 * len(panels) + 0.6), sharex=True, sharey=True,
        squeeze=False,
    )  # fmt: skip
    for ax, (region, mb) in zip(axes[:, 0], panels.items(), strict=True):
        ax.stackplot(mb.index, *(mb[az] for az in mb.columns), labels=list(mb.columns))
        ax.set_title(region, fontsize=9, loc="left")
        ax.set_ylabel("MB / minute")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    _minute_ticks(axes[-1, 0], by_minute["minute"].max() - by_minute["minute"].min())
    fig.suptitle("Bytes sent by source region, stacked by AZ")
    return _save(fig, out / "bytes_by_region_az.png")


def _minute_ticks(ax: Any, span: pd.Timedelta) -> None:
    """Time ticks on whole minutes or coarser (the rows are per minute), 2 to 8 of them."""
    from matplotlib import dates

    coarse = (dates.YEARLY, dates.MONTHLY, dates.DAILY, dates.HOURLY, dates.MINUTELY)
    most = {**dict.fromkeys(coarse, 8), dates.SECONDLY: 0, dates.MICROSECONDLY: 0}
    least = 2 if span >= pd.Timedelta(minutes=2) else 1  # a one-minute span has one step
    locator = dates.AutoDateLocator(minticks=least, maxticks=most)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))


def chart_statuses(statuses: pd.DataFrame, out: Path) -> str:
    """Bars: attribution status counts per side."""
    plt = _plt()
    pivot = statuses.pivot_table(index="status", columns="side", values="sides", fill_value=0)
    fig, ax = plt.subplots(figsize=(6, 4))
    pivot.plot.bar(ax=ax, rot=0)
    ax.set_title("Attribution outcomes (final flows)")
    return _save(fig, out / "attribution_status.png")


def text_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  "
) -> list[str]:
    """Rows as aligned console lines under ``header``: the first column left-aligned, the
    others right-aligned (they hold numbers).

    >>> text_table(["method", "correct"], [["dredge", "9 (90.0%)"]])
    ['  method    correct', '  dredge  9 (90.0%)']
    """
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = (str(c) for c in cells)
        parts = [
            first.ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True)),
        ]
        return (indent + "  ".join(parts)).rstrip()

    return [line(header), *(line(r) for r in rows)]


OUTCOMES = ("correct", "misattributed", "unattributed")
METHODS = {"dredge": "Dredge", "naive_current_owner": "naive current owner"}


def accuracy_lines(counts: pd.DataFrame) -> list[str]:
    """The accuracy table for the console: flow sides per outcome and method, with shares.

    Needs ``method, outcome, sides`` (:func:`spark_jobs.transforms.accuracy.outcome_counts`).
    """
    rows = []
    for method, name in METHODS.items():
        part = counts[counts["method"] == method]
        cells = {str(r.outcome): int(r.sides) for r in part.itertuples()}
        total = sum(cells.values()) or 1
        rows.append(
            [
                name,
                *(
                    f"{cells.get(k, 0):,} ({100.0 * cells.get(k, 0) / total:.1f}%)"
                    for k in OUTCOMES
                ),
            ]
        )
    return text_table(["flow sides", *OUTCOMES], rows)


def basis_line(basis: pd.DataFrame) -> str:
    """How Dredge's correct sides were attributed, and how many sides were conflicts.

    Needs ``outcome, attributed_by, sides`` (:func:`spark_jobs.transforms.accuracy.basis_counts`).

    >>> import pandas as pd
    >>> basis_line(pd.DataFrame({"outcome": ["correct", "correct", "unattributed"],
    ...                          "attributed_by": ["ip", "eni", "conflict"], "sides": [9, 3, 1]}))
    "  Dredge's correct sides: 9 by address, 3 through an ENI; 1 conflict"
    """

    def total(outcome: str | None, by: str) -> int:
        rows = basis[basis["attributed_by"] == by]
        if outcome is not None:
            rows = rows[rows["outcome"] == outcome]
        return int(rows["sides"].sum())

    conflicts = total(None, "conflict")
    return (
        f"  Dredge's correct sides: {total('correct', 'ip'):,} by address, "
        f"{total('correct', 'eni'):,} through an ENI; "
        f"{conflicts:,} conflict{'' if conflicts == 1 else 's'}"
    )


REASONS = {  # the reasons of spark_jobs.transforms.accuracy.unattributed_reasons
    "conflict": "the capturing ENI and the address's owner disagree (conflict)",
    "expired": "pending longer than the wait allowed, then given up",
    "capturing": "the capturing ENI's own address, past what the inventory confirms",
    "peer": "the peer's address, between the observations that saw its owners",
}


def reason_lines(reasons: pd.DataFrame) -> list[str]:
    """Why sides with a true owner stayed unattributed, most first.

    Needs ``reason, sides`` (:func:`spark_jobs.transforms.accuracy.unattributed_reasons`).
    """
    if reasons.empty:
        return ["  (none)"]
    ordered = reasons.sort_values("sides", ascending=False)
    rows = [[REASONS.get(str(r.reason), str(r.reason)), f"{int(r.sides):,}"]
            for r in ordered.itertuples()]  # fmt: skip
    return text_table(["reason", "sides"], rows)


def pairs_lines(pairs: pd.DataFrame) -> list[str]:
    """The top cross-region app pairs for the console, by bytes.

    Needs ``src_app, src_region, dst_app, dst_region, bytes, flows``
    (:func:`spark_jobs.transforms.rollups.top_cross_region_pairs`).
    """
    rows = [
        [f"{r.src_app} ({r.src_region}) -> {r.dst_app} ({r.dst_region})",
         f"{r.bytes / 1e6:,.1f}", f"{int(r.flows):,}"]
        for r in pairs.itertuples()
    ]  # fmt: skip
    return text_table(["source app (region) -> destination app (region)", "MB", "flows"], rows)


def write_html(
    out: Path, title: str, summary: list[str], tables: dict[str, pd.DataFrame], images: list[str]
) -> Path:
    """One self-contained page (images are sibling files)."""
    parts = [
        f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>",
        f"<h1>{html.escape(title)}</h1><ul>",
    ]
    parts += [f"<li>{html.escape(line)}</li>" for line in summary]
    parts.append("</ul>")
    parts += [f"<img src='{html.escape(name)}' style='max-width:48%'>" for name in images]
    for name, frame in tables.items():
        parts.append(f"<h2>{html.escape(name)}</h2>{frame.to_html(index=False)}")
    parts.append("</body></html>")
    path = out / "index.html"
    path.write_text("\n".join(parts))
    return path
