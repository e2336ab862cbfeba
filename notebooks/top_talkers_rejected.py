# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Top talkers and rejected flows
#
# The label pairs moving the most bytes, and the most frequent rejected
# (source, destination, port, protocol) combinations - misconfigured security groups or
# scans. Logic: `spark_jobs.analysis.top_talkers` / `rejected_flows`.

# %% tags=["parameters"]
import os

ENRICHED = os.environ.get("DREDGE_ENRICHED", "data/enriched")
CONF = os.environ.get("DREDGE_CONF", "conf/local.yaml")
WHERE = os.environ.get("DREDGE_WHERE", "")
MASTER = os.environ.get("DREDGE_SPARK_MASTER", "local[2]")
TOP_N = 10

# %%
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import Image, display

from spark_jobs import analysis, config
from spark_jobs.session import build_session
from spark_jobs.sources.tables import read_table

cfg = config.load(CONF, {"spark": {"master": MASTER, "shuffle_partitions": 2}})
spark = build_session(cfg.spark)
enriched_df = read_table(spark, ENRICHED, WHERE or None)


def show(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    display(Image(buf.getvalue()))


def barh(ax, labels, values, empty_text, xlabel):
    if len(values) == 0:
        ax.text(0.5, 0.5, empty_text, ha="center", va="center")
        ax.set_axis_off()
        return
    ax.barh(list(labels)[::-1], list(values)[::-1])
    ax.set_xlabel(xlabel)


# %%
talkers = analysis.top_talkers(enriched_df, TOP_N).toPandas()
rejected = analysis.rejected_flows(enriched_df, TOP_N).toPandas()

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(14, 0.4 * TOP_N + 1.5))
barh(left, talkers.src_label + " -> " + talkers.dst_label, talkers.bytes / 1e6,
     "no traffic", "MB")
left.set_title(f"Top {TOP_N} talkers")
barh(right, rejected.src_label + " -> " + rejected.dst_label + ":" + rejected.dstport.astype(str),
     rejected.flows, "no rejected flows", "rejected flows")
right.set_title("Most frequent rejections")
show(fig)

# %%
talkers

# %%
rejected
