"""Our source options -> Databricks ``kinesis`` / EMR ``aws-kinesis`` options (no Spark)."""

from __future__ import annotations

import logging

import pytest

from spark_jobs.config import SourceConfig
from spark_jobs.sources.kinesis.adapters import platform_options, source_options

ROLE = "arn:aws:iam::123456789012:role/flows-reader"


def _options(**source: object) -> dict[str, str]:
    return source_options(SourceConfig(**source), "s3://bucket/ckpt/q-source-meta")  # type: ignore[arg-type]


def test_emr_translation_of_our_options():
    opts = _options(
        stream_names=("flows",),
        region="eu-west-1",
        role_arn=ROLE,
        starting_position="AT_TIMESTAMP:2026-01-01T00:00:00Z",
    )
    assert platform_options(opts, "emr") == {
        "kinesis.streamName": "flows",
        "kinesis.region": "eu-west-1",
        "kinesis.endpointUrl": "https://kinesis.eu-west-1.amazonaws.com",
        "kinesis.startingPosition": "AT_TIMESTAMP 2026-01-01T00:00:00Z",
        "kinesis.stsRoleArn": ROLE,
        "kinesis.stsSessionName": "dredge",
    }


def test_emr_keeps_an_explicit_endpoint_and_passes_platform_options_through():
    opts = _options(
        stream_names=("flows",),
        endpoint_url="http://127.0.0.1:4567",
        options={"kinesis.consumerType": "SubscribeToShard", "kinesis.consumerName": "dredge"},
    )
    out = platform_options(opts, "emr")
    assert out["kinesis.endpointUrl"] == "http://127.0.0.1:4567"
    assert out["kinesis.consumerType"] == "SubscribeToShard"
    assert out["kinesis.consumerName"] == "dredge"
    assert out["kinesis.startingPosition"] == "TRIM_HORIZON"
    # Ours never leak to the platform under our names.
    assert not {k.lower() for k in out} & {"metadatapath", "maxrecordsperbatch", "streamname"}


def test_emr_refuses_several_streams():
    with pytest.raises(ValueError, match="one stream"):
        platform_options(_options(stream_names=("a", "b")), "emr")


def test_databricks_translation_and_pass_through():
    opts = _options(
        stream_names=("a", "b"),
        region="us-west-2",
        endpoint_url="https://kinesis.us-west-2.amazonaws.com",
        role_arn=ROLE,
        starting_position="LATEST",
        options={"maxFetchDuration": "2s", "shardsPerTask": "2"},
    )
    assert platform_options(opts, "databricks") == {
        "streamName": "a,b",
        "region": "us-west-2",
        "initialPosition": "latest",
        "endpoint": "https://kinesis.us-west-2.amazonaws.com",
        "roleArn": ROLE,
        "maxFetchDuration": "2s",
        "shardsPerTask": "2",
    }


def test_a_platform_option_wins_over_the_translated_one_whatever_its_case():
    opts = _options(starting_position="LATEST", options={"InitialPosition": "earliest"})
    out = platform_options(opts, "databricks")
    assert out["InitialPosition"] == "earliest"
    assert "initialPosition" not in out


def test_databricks_at_timestamp_needs_the_platform_option():
    opts = _options(starting_position="AT_TIMESTAMP:2026-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="initialPosition"):
        platform_options(opts, "databricks")
    given = '{"at_timestamp": "01/01/2026 00:00:00 UTC", "format": "MM/dd/yyyy HH:mm:ss ZZZ"}'
    opts = _options(
        starting_position="AT_TIMESTAMP:2026-01-01T00:00:00Z",
        options={"initialPosition": given},
    )
    assert platform_options(opts, "databricks")["initialPosition"] == given


def test_option_keys_of_ours_are_matched_in_any_case():
    out = platform_options({"STREAMNAME": "flows", "Region": "us-east-1"}, "emr")
    assert out["kinesis.streamName"] == "flows"
    assert out["kinesis.region"] == "us-east-1"
    assert "STREAMNAME" not in out and "Region" not in out


@pytest.mark.parametrize("kind", ["emr", "databricks"])
def test_batch_budgets_are_not_mapped_and_say_so(kind, caplog):
    opts = _options(max_records_per_batch=1000, max_bytes_per_batch=10_000_000)
    with caplog.at_level(logging.WARNING, logger="spark_jobs.sources.kinesis.adapters"):
        out = platform_options(opts, kind)
    assert "1000" not in out.values()
    assert "maxrecordsperbatch, maxbytesperbatch not applied" in caplog.text


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="flink"):
        platform_options({"streamName": "x"}, "flink")
