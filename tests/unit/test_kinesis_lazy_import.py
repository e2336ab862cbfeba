"""Kinds emr / databricks run on Spark 4.0, which lacks the Python streaming data source API:
importing the Kinesis package, the adapters or the job must not load our data source."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# On Spark 4.0 these do not exist (or lack the streaming admission-control API); a None entry
# in sys.modules makes any import of them fail, as it would there.
BLOCKED = (
    "pyspark.sql.datasource",
    "pyspark.sql.streaming.datasource",
    "spark_jobs.sources.kinesis.datasource",
)


def _run(body: str) -> subprocess.CompletedProcess[str]:
    script = "import sys\n"
    script += "".join(f"sys.modules[{name!r}] = None\n" for name in BLOCKED)
    script += textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )


def test_platform_path_imports_without_the_data_source():
    result = _run(
        """
        import spark_jobs.sources.kinesis as kinesis
        from spark_jobs.sources.kinesis.adapters import read_kinesis, to_source_schema
        from spark_jobs.jobs import enrich_flows
        assert kinesis.EMR_COLUMNS["streamName"] == "stream_name"
        print("imported")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def test_the_blocker_is_real_the_python_kind_needs_the_data_source():
    # Guards the test above: with the modules blocked, the python path does fail.
    result = _run(
        """
        from spark_jobs.sources.kinesis import NAME
        """
    )
    assert result.returncode != 0
    assert "spark_jobs.sources.kinesis.datasource" in result.stderr


def test_a_fresh_import_loads_no_data_source_module():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; import spark_jobs.sources.kinesis, spark_jobs.jobs.enrich_flows; "
            "print(sorted(m for m in sys.modules if m.endswith('.datasource')))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
