"""``dredge-kinesis`` is registered once per session: Spark warns each time a data source is
registered again, and a driver that starts the stream twice (the demo) would."""

from __future__ import annotations

from types import SimpleNamespace

from spark_jobs.sources.kinesis.adapters import register
from spark_jobs.sources.kinesis.datasource import KinesisDataSource


class _Session:
    def __init__(self) -> None:
        self.registered: list[type] = []
        self.dataSource = SimpleNamespace(register=self.registered.append)


def test_a_session_registers_the_source_once():
    one, other = _Session(), _Session()
    register(one)  # type: ignore[arg-type]
    register(one)  # type: ignore[arg-type]
    register(other)  # type: ignore[arg-type]
    assert one.registered == [KinesisDataSource]
    assert other.registered == [KinesisDataSource]
