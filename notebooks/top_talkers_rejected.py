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
from spark_jobs import analysis
from spark_jobs.notebook import open_enriched, pyplot, show

plt = pyplot()
spark, enriched_df = open_enriched(CONF, MASTER, ENRICHED, WHERE)


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
pairs = talkers.src_label + " -> " + talkers.dst_label
barh(left, pairs, talkers.bytes / 1e6, "no traffic", "MB")
left.set_title(f"Top {TOP_N} talkers")
ports = rejected.src_label + " -> " + rejected.dst_label + ":" + rejected.dstport.astype(str)
barh(right, ports, rejected.flows, "no rejected flows", "rejected flows")
right.set_title("Most frequent rejections")
show(fig)

# %%
talkers

# %%
rejected
