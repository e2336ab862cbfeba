"""The Druid Kafka supervisor spec (``conf/druid/dredge-flows-supervisor.json``), filled in.

The file names the topic and brokers with ``@KAFKA_TOPIC@`` / ``@KAFKA_BOOTSTRAP_SERVERS@``
placeholders; :func:`supervisor_spec` replaces them from the ``kafka`` config section so that
one file serves every environment. Pure: no I/O besides reading the template.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

DEFAULT_SPEC_PATH = Path(__file__).resolve().parents[2] / "conf/druid/dredge-flows-supervisor.json"
TOPIC_PLACEHOLDER = "@KAFKA_TOPIC@"
SERVERS_PLACEHOLDER = "@KAFKA_BOOTSTRAP_SERVERS@"


def load_template(path: str | Path = DEFAULT_SPEC_PATH) -> dict[str, Any]:
    """The spec file as a mapping, placeholders left in."""
    with open(path, encoding="utf-8") as fh:
        spec: dict[str, Any] = json.load(fh)
    return spec


def supervisor_spec(
    template: dict[str, Any],
    bootstrap_servers: str,
    topic: str,
    data_source: str | None = None,
    kafka_options: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A copy of ``template`` reading ``topic`` from ``bootstrap_servers``.

    Args:
        template: the mapping from :func:`load_template`.
        bootstrap_servers: ``kafka.bootstrap_servers`` from the config.
        topic: ``kafka.topic`` from the config.
        data_source: a datasource name other than the template's (tests use unique names).
        kafka_options: extra consumer properties (``kafka.options``, e.g. security settings);
            ``isolation.level`` stays ``read_committed`` whatever they say, since the producer
            is transactional and aborted batches must not be counted.
    """
    spec = copy.deepcopy(template)
    body = spec["spec"]
    io = body["ioConfig"]
    if io.get("topic") != TOPIC_PLACEHOLDER:
        raise ValueError(f"spec template: ioConfig.topic must be {TOPIC_PLACEHOLDER}")
    consumer = io["consumerProperties"]
    if consumer.get("bootstrap.servers") != SERVERS_PLACEHOLDER:
        raise ValueError(f"spec template: bootstrap.servers must be {SERVERS_PLACEHOLDER}")
    io["topic"] = topic
    consumer.update(kafka_options or {})
    consumer["bootstrap.servers"] = bootstrap_servers
    consumer["isolation.level"] = "read_committed"
    if data_source is not None:
        body["dataSchema"]["dataSource"] = data_source
    return spec


def data_source_of(spec: dict[str, Any]) -> str:
    """The datasource (and supervisor id) a spec writes."""
    return str(spec["spec"]["dataSchema"]["dataSource"])
