"""Config loading: overlays merge, unknown keys and bad values fail naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_jobs import config
from spark_jobs.config import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize(
    ("name", "platform", "kind", "interval"),
    [
        ("base", "local", "python", "1 second"),
        ("local", "local", "python", "1 second"),
        ("emr", "emr", "python", "30 seconds"),
        ("databricks", "databricks", "databricks", "30 seconds"),
    ],
)
def test_shipped_overlays_load(name, platform, kind, interval):
    cfg = config.load(CONF / f"{name}.yaml")
    assert cfg.spark.platform == platform
    assert cfg.source.kind == kind
    assert cfg.stream.trigger_interval == interval


def test_local_overlay_points_at_loopback_and_keeps_base_defaults():
    cfg = config.load(CONF / "local.yaml")
    assert cfg.source.endpoint_url == "http://127.0.0.1:4567"
    assert cfg.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert cfg.source.stream_names == ("dredge-flows",)
    assert cfg.attribution.max_pending_minutes == 30


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spark:\n  shuffle_partitons: 4\n", "spark.shuffle_partitons: unknown key"),
        ("source:\n  max_records_per_batch: many\n", "source.max_records_per_batch: expected int"),
        ("spark:\n  platform: k8s\n", "spark.platform: expected one of"),
        ("kafka:\n  enabled: 'yes'\n", "kafka.enabled: expected true/false"),
        # settings that went: an old config names them, and is told so
        ("stream:\n  local_checkpoint: true\n", "stream.local_checkpoint: unknown key"),
        ("stream:\n  trigger: sometimes\n", "stream.trigger: expected one of"),
        ("source:\n  starting_position: EARLIEST\n", "source.starting_position"),
        ("nope: 1\n", "nope: unknown key"),
        ("spark:\n  shuffle_partitions: 0\n", "spark.shuffle_partitions: must be >= 1"),
        ("source:\n  log_format: ''\n", "source.log_format: empty flow-log format"),
        ("source:\n  log_format: '${srcip}'\n", "source.log_format: unknown flow-log field"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("source: [\n", "invalid YAML"),
    ],
)
def test_bad_config_fails_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        config.load(_write(tmp_path, text))


def test_extends_merges_nested_sections(tmp_path):
    (tmp_path / "parent.yaml").write_text("kafka:\n  topic: a\n  enabled: false\n")
    cfg = config.load(_write(tmp_path, "extends: parent.yaml\nkafka:\n  topic: b\n"))
    assert cfg.kafka.topic == "b"
    assert cfg.kafka.enabled is False


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "absent.yaml")


def test_overrides_and_comma_lists():
    over = config.parse_override("source.stream_names=a,b")
    cfg = config.load(CONF / "local.yaml", over)
    assert cfg.source.stream_names == ("a", "b")
    assert config.parse_override("kafka.enabled=false") == {"kafka": {"enabled": False}}
    with pytest.raises(ConfigError):
        config.parse_override("no-equals-sign")


def test_paths_resolve_against_root():
    paths = config.PathsConfig(root="s3://bucket/dredge", enriched="enriched", pending="/abs/p")
    assert paths.resolve("enriched") == "s3://bucket/dredge/enriched"
    assert paths.resolve("pending") == "/abs/p"
    assert paths.resolve("root") == "s3://bucket/dredge"


def test_config_is_frozen():
    cfg = config.from_dict({})
    with pytest.raises(AttributeError):
        cfg.kafka.topic = "x"  # type: ignore[misc]
