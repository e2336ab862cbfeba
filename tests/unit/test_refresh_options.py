"""``dredge refresh-ownership`` reads the config's ``refresh`` section; a flag given on the
command line overrides its key for that run."""

from __future__ import annotations

import pytest

from spark_jobs import config
from spark_jobs.jobs.refresh_ownership import options_for, parse_args


def _cfg(**refresh: object) -> config.DredgeConfig:
    return config.from_dict({"refresh": refresh})


def test_the_config_alone_makes_a_looping_aws_sweep() -> None:
    cfg = _cfg(inventory="aws", regions=["eu-west-1", "us-east-1"], accounts=["444455556666"],
               app_tags=["service"], every="5m", ip_ranges="s3://b/ip-ranges.json")  # fmt: skip
    opts = options_for(parse_args(["--conf", "c.yaml"]), cfg.refresh)
    assert opts.inventory is not None
    assert opts.inventory.regions == ("eu-west-1", "us-east-1")
    assert opts.inventory.accounts == ("444455556666",)
    assert opts.inventory.app_tags == ("service",)
    assert opts.inventory.cluster_tags == ("cluster",)  # the default
    assert (opts.every_seconds, opts.ip_ranges, opts.snapshots) == (
        300.0,
        "s3://b/ip-ranges.json",
        (),
    )


def test_flags_override_the_config_key_by_key() -> None:
    cfg = _cfg(inventory="aws", regions=["eu-west-1"], every="5m", jitter=0.2,
               snapshots=["/data/snaps"])  # fmt: skip
    args = parse_args(["--conf", "c.yaml", "--regions", "ap-south-1,us-west-2", "--every", "30s",
                       "--snapshot", "/tmp/one.jsonl", "--max-runs", "3"])  # fmt: skip
    opts = options_for(args, cfg.refresh)
    assert opts.inventory is not None and opts.inventory.regions == ("ap-south-1", "us-west-2")
    assert (opts.every_seconds, opts.jitter, opts.max_runs) == (30.0, 0.2, 3)
    assert opts.snapshots == ("/tmp/one.jsonl",)  # the flag's list replaces the config's


def test_without_a_source_anywhere_there_is_nothing_to_do() -> None:
    with pytest.raises(ValueError, match="nothing to do"):
        options_for(parse_args(["--conf", "c.yaml"]), _cfg().refresh)
    # no inventory in the config or the flags: the sweep settings alone do nothing
    with pytest.raises(ValueError, match="nothing to do"):
        options_for(parse_args(["--conf", "c.yaml", "--regions", "eu-west-1"]), _cfg().refresh)
    opts = options_for(parse_args(["--conf", "c.yaml", "--vpc-cidrs", "v.json"]), _cfg().refresh)
    assert (opts.vpc_cidrs, opts.inventory, opts.every_seconds) == ("v.json", None, None)


@pytest.mark.parametrize(
    ("refresh", "message"),
    [
        ({"every": "soon"}, "refresh.every: bad duration"),
        ({"every": "0s"}, "refresh.every: bad duration"),
        ({"jitter": 1.5}, "refresh.jitter: must be at least 0 and below 1"),
        ({"max_attempts": 0}, "refresh.max_attempts: must be >= 1"),
        ({"inventory": "gcp"}, "refresh.inventory: expected one of"),
        ({"max_runs": -1}, "refresh.max_runs: expected a non-negative int"),
    ],
)
def test_bad_refresh_values_fail_at_load(refresh: dict[str, object], message: str) -> None:
    with pytest.raises(config.ConfigError, match=message):
        _cfg(**refresh)


def test_config_defaults_are_the_inventory_readers_own() -> None:
    from spark_jobs.sources.inventory import InventoryConfig

    refresh, inventory = config.RefreshConfig(), InventoryConfig()
    for name in ("regions", "accounts", "role_arn_template", "app_tags", "cluster_tags",
                 "endpoint_url", "max_attempts"):  # fmt: skip
        assert getattr(refresh, name) == getattr(inventory, name), name


def test_once_overrides_a_configured_loop_and_flag_values_are_checked() -> None:
    cfg = _cfg(inventory="aws", every="5m")
    assert options_for(parse_args(["--conf", "c.yaml"]), cfg.refresh).every_seconds == 300.0
    once = options_for(parse_args(["--conf", "c.yaml", "--once"]), cfg.refresh)
    assert once.every_seconds is None and once.inventory is not None
    for bad in (["--jitter", "1.5"], ["--max-runs", "-1"], ["--max-attempts", "0"]):
        with pytest.raises(ValueError, match=f"{bad[0]} must be"):
            options_for(parse_args(["--conf", "c.yaml", *bad]), cfg.refresh)


def test_a_bad_config_value_is_a_usage_error(tmp_path, capsys) -> None:
    from spark_jobs.jobs.refresh_ownership import main

    conf = tmp_path / "c.yaml"
    conf.write_text("refresh:\n  every: soon\n  inventory: aws\n")
    with pytest.raises(SystemExit) as exited:
        main(["--conf", str(conf)])
    assert exited.value.code == 2  # not 1, which means a partial failure
    assert "refresh.every: bad duration" in capsys.readouterr().err
