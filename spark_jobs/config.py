"""Typed configuration: frozen dataclasses loaded from YAML overlays and validated at load.

A config file may name a parent with ``extends: base.yaml``; mappings merge key by key, the
child winning. Unknown keys and values of the wrong type fail at load with a message naming
the key (``ConfigError: source.max_records_per_batch: expected int, got 'many'``).
Relative paths under ``paths`` resolve against ``paths.root``; ``paths.root`` itself resolves
against the current directory, so ``dredge ... --conf conf/local.yaml`` run from the project
folder keeps its data in ``./data``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

Platform = Literal["local", "emr", "databricks"]
SourceKind = Literal["python", "databricks", "emr"]


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the key."""


@dataclass(frozen=True)
class SparkConfig:
    """How to build the SparkSession."""

    platform: Platform = "local"
    master: str = "local[*]"
    app_name: str = "dredge"
    jars_dir: str = ".jars/spark"
    shuffle_partitions: int = 8
    ui_enabled: bool = False
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceConfig:
    """Where flow records come from (Kinesis) and how they are framed."""

    kind: SourceKind = "python"
    stream_names: tuple[str, ...] = ("dredge-flows",)
    region: str = "us-east-1"
    endpoint_url: str | None = None
    role_arn: str | None = None
    starting_position: str = "TRIM_HORIZON"
    max_records_per_batch: int | None = 200_000
    max_bytes_per_batch: int | None = None
    record_format: Literal["cloudwatch", "raw"] = "cloudwatch"
    log_format: str | None = None
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PathsConfig:
    """Tables and checkpoints. Relative paths resolve against ``root``."""

    root: str = "data"
    enriched: str = "enriched"
    quarantine: str = "quarantine"
    pending: str = "pending"
    ownership: str = "ownership"
    cidr_labels: str = "cidr_labels"
    checkpoints: str = "checkpoints"

    def resolve(self, name: str) -> str:
        """Absolute path (or URI) of the table or folder called ``name``."""
        root = self.root if "://" in self.root else os.path.abspath(self.root)
        if name == "root":
            return root
        value = str(getattr(self, name))
        if "://" in value or os.path.isabs(value):
            return value
        return f"{root.rstrip('/')}/{value}"


@dataclass(frozen=True)
class KafkaConfig:
    """The Kafka topic Druid ingests. Secrets come from the environment, never from files."""

    enabled: bool = True
    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "dredge.flows.enriched"
    transactional: bool = True
    topic_partitions: int = 4
    producer_tasks: int = 2
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AttributionConfig:
    """Time-correct attribution settings."""

    max_pending_minutes: int = 30
    broadcast_threshold_rows: int = 500_000


@dataclass(frozen=True)
class QualityConfig:
    """Great Expectations settings. ``sample_fraction`` > 0 validates that share of every
    micro-batch's final rows and reports it in the batch metrics (never blocks); it costs
    several Spark jobs per expectation, so it is off by default."""

    min_attributed_share: float = 0.5
    sample_fraction: float = 0.0


@dataclass(frozen=True)
class StreamConfig:
    """The streaming query's trigger."""

    trigger: Literal["processing_time", "available_now"] = "processing_time"
    trigger_interval: str = "1 second"
    query_name: str = "dredge-enrich"


@dataclass(frozen=True)
class RefreshConfig:
    """``dredge refresh-ownership``: what a run reads and how often. Each key has a flag of
    the same name (``--ip-ranges`` for ``ip_ranges``) that overrides it for one run."""

    snapshots: tuple[str, ...] = ()  # inventory snapshot files or folders
    inventory: Literal["aws"] | None = None  # aws: sweep EC2 network interfaces live
    regions: tuple[str, ...] = ("us-east-1",)
    accounts: tuple[str, ...] = ()  # empty: the caller's own account, no AssumeRole
    role_arn_template: str = "arn:aws:iam::{account_id}:role/dredge-inventory-reader"
    app_tags: tuple[str, ...] = ("app",)
    cluster_tags: tuple[str, ...] = ("cluster",)
    endpoint_url: str | None = None
    max_attempts: int = 5
    ip_ranges: str | None = None  # AWS ip-ranges.json (service CIDR labels)
    vpc_cidrs: str | None = None  # a VPC/subnet CIDR file (the sweep reads them live)
    every: str | None = None  # loop: "30s", "5m", "1h"; null: one run
    jitter: float = 0.1
    max_runs: int = 0  # stop a loop after N runs (0: never)

    @property
    def every_seconds(self) -> float | None:
        """``every`` in seconds (None: one run)."""
        return None if self.every is None else duration_seconds(self.every)


def refresh_problem(jitter: float, max_runs: int, max_attempts: int) -> tuple[str, str] | None:
    """What is wrong with these refresh settings, as (key, message); None: nothing. One rule
    for the config's ``refresh`` section and for the same settings given as flags."""
    if not 0.0 <= jitter < 1.0:
        return "jitter", f"must be at least 0 and below 1, got {jitter}"
    if max_runs < 0:
        return "max_runs", f"must be >= 0, got {max_runs}"
    if max_attempts < 1:
        return "max_attempts", f"must be >= 1, got {max_attempts}"
    return None


@dataclass(frozen=True)
class DredgeConfig:
    """The whole configuration; one section per component."""

    spark: SparkConfig = field(default_factory=SparkConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    attribution: AttributionConfig = field(default_factory=AttributionConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    refresh: RefreshConfig = field(default_factory=RefreshConfig)


def _fail(path: str, msg: str) -> typing.NoReturn:
    raise ConfigError(f"{path}: {msg}")


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, path)
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            _fail(path, f"expected one of {list(allowed)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            _fail(path, f"expected a mapping, got {value!r}")
        return _build(typing.cast(type, tp), value, path)
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            _fail(path, f"expected a list, got {value!r}")
        return tuple(_convert(get_args(tp)[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            _fail(path, f"expected a mapping, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            _fail(path, f"expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(path, f"expected int, got {value!r}")
        if value < 0:
            _fail(path, f"expected a non-negative int, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            _fail(path, f"expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            _fail(path, f"expected a string, got {value!r}")
        return value
    _fail(path, f"unsupported type {tp!r}")


def _build(cls: type, data: Mapping[str, Any], path: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"{path}." if path else ""
        _fail(f"{where}{unknown[0]}", f"unknown key (allowed: {', '.join(sorted(names))})")
    kwargs = {k: _convert(hints[k], v, f"{path}.{k}" if path else k) for k, v in data.items()}
    return cls(**kwargs)


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: 'extends' cycle")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as err:
        raise ConfigError(f"config file not found: {path}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    return _merge(_read_yaml(path.parent / str(parent), (*seen, path)), raw)


def duration_seconds(text: str) -> float | None:
    """A duration (a positive number with an optional ``s``/``m``/``h`` unit, seconds by
    default) as seconds; None for anything else."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not m or float(m.group(1)) <= 0:
        return None
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2) or "s"]


def from_dict(data: Mapping[str, Any]) -> DredgeConfig:
    """Validate a plain mapping into a :class:`DredgeConfig`."""
    cfg = typing.cast(DredgeConfig, _build(DredgeConfig, data))
    _check(cfg)
    return cfg


def _check(cfg: DredgeConfig) -> None:
    pos = cfg.source.starting_position
    if pos not in ("TRIM_HORIZON", "LATEST") and not pos.startswith("AT_TIMESTAMP:"):
        _fail(
            "source.starting_position",
            f"expected TRIM_HORIZON, LATEST or AT_TIMESTAMP:<ISO-8601>, got {pos!r}",
        )
    if not cfg.source.stream_names:
        _fail("source.stream_names", "at least one stream is required")
    if cfg.spark.shuffle_partitions < 1:
        _fail("spark.shuffle_partitions", "must be >= 1")
    if not 0.0 <= cfg.quality.sample_fraction <= 1.0:
        _fail("quality.sample_fraction", "must be between 0 and 1")
    if not 0.0 <= cfg.quality.min_attributed_share <= 1.0:
        _fail("quality.min_attributed_share", "must be between 0 and 1")
    r = cfg.refresh
    problem = refresh_problem(r.jitter, r.max_runs, r.max_attempts)
    if problem:
        _fail(f"refresh.{problem[0]}", problem[1])
    if r.every is not None and r.every_seconds is None:
        _fail("refresh.every", f"bad duration {cfg.refresh.every!r} (e.g. 30s, 5m, 1h)")
    if cfg.source.log_format is not None:
        from spark_jobs.schemas import FormatError, parse_format_string

        try:
            parse_format_string(cfg.source.log_format)
        except FormatError as err:
            _fail("source.log_format", f"{err} (null means the v2 default format)")


def load(path: str | os.PathLike[str], overrides: Mapping[str, Any] | None = None) -> DredgeConfig:
    """Load a YAML config (following ``extends``), apply ``overrides`` and validate."""
    data = _read_yaml(Path(path))
    if overrides:
        data = _merge(data, overrides)
    try:
        return from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err


def parse_override(text: str) -> dict[str, Any]:
    """Turn ``a.b=value`` (value parsed as YAML) into a nested mapping."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key.path=value")
    key, raw = text.split("=", 1)
    value: Any = yaml.safe_load(raw) if raw else ""
    for part in reversed(key.strip().split(".")):
        value = {part: value}
    return typing.cast(dict[str, Any], value)
