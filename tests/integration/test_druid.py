"""A real Apache Druid (scripts/druid.sh, started here when not running) ingests the enrichment
job's Kafka topic; its SQL answers equal the same aggregates over the Delta table, and both
equal what the known demo input implies (computed here in plain Python)."""

from __future__ import annotations

import subprocess
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from spark_jobs.druid import demo_data
from spark_jobs.druid.client import DruidClient
from spark_jobs.jobs.druid_demo import DemoOptions, demo_config, run_demo

pytestmark = [pytest.mark.integration, pytest.mark.druid]
ROOT = Path(__file__).resolve().parents[2]
SCRIPT = str(ROOT / "scripts/druid.sh")


@pytest.fixture(scope="module")
def druid() -> Iterator[DruidClient]:
    """The local Druid; started (and stopped afterwards) when it is not already running."""
    was_running = subprocess.run([SCRIPT, "status"], capture_output=True).returncode == 0
    if not was_running:
        subprocess.run([SCRIPT, "up"], check=True, timeout=900)
    yield DruidClient()
    if not was_running:
        subprocess.run([SCRIPT, "down"], check=True, timeout=300)


def expected_cross_region_pairs() -> list[tuple[str, str, int, int]]:
    """Top cross-region app pairs implied by the demo input (duplicate views not counted)."""
    regions = {a.name: a.region for a in demo_data.APPS.values()}
    regions[demo_data.S3_IP] = "us-east-1"  # the S3 prefix label's region
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for minute in range(1, demo_data.MINUTES + 1):
        for i, (src, dst, scale, _, _) in enumerate(demo_data.PAIRS):
            if (minute + i) % 3 == 0 or dst not in demo_data.APPS:
                continue  # S3 is in the source's region; the internet has none
            if regions[src] != regions[dst]:
                totals[(src, dst)][0] += 1
                totals[(src, dst)][1] += scale + 37 * minute
    rows = [(s, d, n, b) for (s, d), (n, b) in totals.items()]
    return sorted(rows, key=lambda r: (-r[3], r[0], r[1]))


@pytest.mark.timeout(1500)
def test_druid_sql_equals_delta_aggregates(spark, druid, tmp_path):
    run = uuid.uuid4().hex[:8]
    cfg = demo_config("conf/local.yaml", run, root=str(tmp_path / "data"))
    opts = DemoOptions(data_source=f"it_druid_{run}", timeout_s=300)
    result = run_demo(spark, cfg, druid, opts)

    region_minute, pairs = result.comparisons
    # one message per minute and pair (a pair's flow of a minute is its only one); the 16
    # duplicate views stay in Delta
    assert (result.published_messages, result.expected_rows) == (64, 64)
    assert region_minute.is_equal, "\n".join(region_minute.differences())
    assert pairs.is_equal, "\n".join(pairs.differences())
    assert pairs.druid == expected_cross_region_pairs()
    assert sum(r[3] for r in region_minute.druid) == 64  # every flow once
    # 12 minutes; unattributed internet side has a null region and is kept as its own group
    assert len({r[0] for r in region_minute.druid}) == 12
    assert any(r[2] is None for r in region_minute.druid)
    assert result.row_stats["processed"] == 64
    assert result.row_stats["thrownAway"] == 0
    assert result.row_stats["unparseable"] == 0
