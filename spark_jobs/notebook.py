"""The few lines every notebook needs: a session, the enriched table, inline PNG figures."""

from __future__ import annotations

import io
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from spark_jobs import config
from spark_jobs.session import build_session
from spark_jobs.sources.tables import read_table


def open_enriched(
    conf: str, master: str, enriched: str, where: str | None = None
) -> tuple[SparkSession, DataFrame]:
    """A small local session (from ``conf``) and the enriched table, optionally filtered."""
    cfg = config.load(conf, {"spark": {"master": master, "shuffle_partitions": 2}})
    spark = build_session(cfg.spark)
    return spark, read_table(spark, enriched, where or None)


def pyplot() -> Any:
    """matplotlib's pyplot on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def show(fig: Any) -> None:
    """Render a figure into the notebook as a PNG output (works when executed headless)."""
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    pyplot().close(fig)
    display(Image(buf.getvalue()))
