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
# # Cross-region talkers: who to co-locate
#
# Application pairs that talk across regions, by bytes. Each pair is a candidate to move
# into one region (or to front with a regional cache): the traffic pays inter-region
# transfer and latency. Logic: `spark_jobs.analysis.cross_region_talkers`.

# %% tags=["parameters"]
import os

ENRICHED = os.environ.get("DREDGE_ENRICHED", "data/enriched")
CONF = os.environ.get("DREDGE_CONF", "conf/local.yaml")
WHERE = os.environ.get("DREDGE_WHERE", "")  # e.g. "event_date = '2026-01-01'"
MASTER = os.environ.get("DREDGE_SPARK_MASTER", "local[2]")
TOP_N = 15

# %%
from spark_jobs import analysis
from spark_jobs.notebook import open_enriched, pyplot, show

plt = pyplot()
spark, enriched_df = open_enriched(CONF, MASTER, ENRICHED, WHERE)


# %%
talkers = analysis.cross_region_talkers(enriched_df).limit(TOP_N).toPandas()
talkers

# %%
fig, ax = plt.subplots(figsize=(9, 0.4 * max(len(talkers), 3) + 1))
if talkers.empty:
    ax.text(0.5, 0.5, "no cross-region traffic", ha="center", va="center")
    ax.set_axis_off()
else:
    src = talkers.src_label + " (" + talkers.src_region + ")"
    dst = talkers.dst_label + " (" + talkers.dst_region + ")"
    names = src + " -> " + dst
    ax.barh(names[::-1], talkers.bytes[::-1] / 1e6)
    ax.set_xlabel("MB")
ax.set_title(f"Top {TOP_N} cross-region pairs by bytes")
show(fig)

# %% [markdown]
# Pairs with traffic in both directions are the strongest co-location candidates
# (`spark_jobs.analysis.cross_region_two_way`).

# %%
two_way = analysis.cross_region_two_way(enriched_df).limit(TOP_N).toPandas()
two_way
