"""The demo report: PNG charts (matplotlib, Agg) and one HTML page, from small pandas frames
that the demo job aggregated with Spark. No Spark here."""

from __future__ import annotations

import html
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


def chart_bytes_over_time(by_minute: pd.DataFrame, out: Path) -> str:
    """Lines: bytes per minute by source region/AZ."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    for (region, az), part in by_minute.groupby(["src_region", "src_az"]):
        ax.plot(part["minute"], part["bytes"] / 1e6, label=f"{region} {az}")
    ax.set_ylabel("MB per minute")
    ax.set_title("Bytes by source region and AZ over time")
    ax.legend(fontsize=6, ncol=3)
    return _save(fig, out / "bytes_by_region_az.png")


def chart_statuses(statuses: pd.DataFrame, out: Path) -> str:
    """Bars: attribution status counts per side."""
    plt = _plt()
    pivot = statuses.pivot_table(index="status", columns="side", values="sides", fill_value=0)
    fig, ax = plt.subplots(figsize=(6, 4))
    pivot.plot.bar(ax=ax, rot=0)
    ax.set_title("Attribution outcomes (final flows)")
    return _save(fig, out / "attribution_status.png")


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
