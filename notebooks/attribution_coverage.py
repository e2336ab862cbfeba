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
# # Attribution coverage over time
#
# Share of flow sides attributed to an application, per time bucket. Unattributed is
# acceptable (internet, AWS services, addresses that changed hands between observations);
# a drop usually means the ownership inventory lags. The ENI line is the share of sides that
# only an ENI's attach time or the capturing ENI could attribute (`attributed_by = eni`).
# Logic: `spark_jobs.analysis.attribution_coverage`.

# %% tags=["parameters"]
import os

ENRICHED = os.environ.get("DREDGE_ENRICHED", "data/enriched")
CONF = os.environ.get("DREDGE_CONF", "conf/local.yaml")
WHERE = os.environ.get("DREDGE_WHERE", "")
MASTER = os.environ.get("DREDGE_SPARK_MASTER", "local[2]")
# date_trunc unit: minute, hour, day (the demo spans minutes, a production day hours)
UNIT = os.environ.get("DREDGE_COVERAGE_UNIT", "minute")

# %%
from spark_jobs import analysis
from spark_jobs.notebook import open_enriched, pyplot, show

plt = pyplot()
spark, enriched_df = open_enriched(CONF, MASTER, ENRICHED, WHERE)


# %%
coverage = analysis.attribution_coverage(enriched_df, UNIT).toPandas()
coverage

# %%
fig, ax = plt.subplots(figsize=(10, 4))
if coverage.empty:
    ax.text(0.5, 0.5, "no traffic", ha="center", va="center")
    ax.set_axis_off()
else:
    sides = {
        "src_share": "source",
        "dst_share": "destination",
        "both_share": "both sides",
        "eni_share": "sides attributed through an ENI",
    }
    for col, label in sides.items():
        ax.plot(coverage.bucket, coverage[col], marker="o", label=label)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("attributed share")
    ax.legend()
    fig.autofmt_xdate()
ax.set_title(f"Attribution coverage per {UNIT}")
show(fig)
