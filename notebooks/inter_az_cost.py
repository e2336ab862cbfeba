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
# # Inter-AZ traffic and its estimated transfer cost
#
# Accepted traffic leaving its availability zone, per application pair, priced at
# `INTER_AZ_USD_PER_GB` in each direction (sender and receiver are both billed) and
# `INTER_REGION_USD_PER_GB` once for inter-region traffic. Estimates only; logic:
# `spark_jobs.analysis.inter_az_traffic`.

# %% tags=["parameters"]
import os

ENRICHED = os.environ.get("DREDGE_ENRICHED", "data/enriched")
CONF = os.environ.get("DREDGE_CONF", "conf/local.yaml")
WHERE = os.environ.get("DREDGE_WHERE", "")
MASTER = os.environ.get("DREDGE_SPARK_MASTER", "local[2]")
INTER_AZ_USD_PER_GB = 0.01
INTER_REGION_USD_PER_GB = 0.02
TOP_N = 15

# %%
from spark_jobs import analysis
from spark_jobs.notebook import open_enriched, pyplot, show

plt = pyplot()
spark, enriched_df = open_enriched(CONF, MASTER, ENRICHED, WHERE)


# %%
cost = analysis.inter_az_traffic(
    enriched_df, INTER_AZ_USD_PER_GB, INTER_REGION_USD_PER_GB
).toPandas()
totals = cost.groupby("transfer")[["gb", "est_cost_usd"]].sum()
print(f"estimated transfer cost in this slice: ${cost.est_cost_usd.sum():,.4f}")
totals

# %%
fig, ax = plt.subplots(figsize=(9, 0.4 * max(min(len(cost), TOP_N), 3) + 1))
top = cost.head(TOP_N)
if top.empty:
    ax.text(0.5, 0.5, "no traffic leaves its AZ", ha="center", va="center")
    ax.set_axis_off()
else:
    colors = ["tab:red" if t == "inter_region" else "tab:blue" for t in top.transfer[::-1]]
    ax.barh((top.src_label + " -> " + top.dst_label)[::-1], top.est_cost_usd[::-1], color=colors)
    ax.set_xlabel("estimated USD (red: inter-region, blue: inter-AZ)")
ax.set_title("Most expensive pairs")
show(fig)

# %%
top
