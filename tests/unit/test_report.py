"""The demo report's pure parts: the region/AZ panels, the console tables, a chart on disk."""

from __future__ import annotations

import pandas as pd

from spark_jobs import report

M0, M1 = pd.Timestamp("2025-01-01 00:00"), pd.Timestamp("2025-01-01 00:01")
BY_MINUTE = pd.DataFrame(
    [
        (M0, "us-east-1", "us-east-1a", 2_000_000),
        (M0, "us-east-1", "us-east-1b", 500_000),
        (M1, "us-east-1", "us-east-1a", 1_000_000),  # us-east-1b sent nothing at M1
        (M0, "eu-west-1", "(no az)", 250_000),
        (M1, "eu-west-1", "(no az)", 750_000),
    ],
    columns=["minute", "src_region", "src_az", "bytes"],
)


def test_one_panel_per_region_with_an_mb_layer_per_az():
    panels = report.region_az_panels(BY_MINUTE)
    assert list(panels) == ["eu-west-1", "us-east-1"]
    east = panels["us-east-1"]
    assert list(east.columns) == ["us-east-1a", "us-east-1b"]
    assert list(east.index) == [M0, M1]
    assert east.to_dict("list") == {"us-east-1a": [2.0, 1.0], "us-east-1b": [0.5, 0.0]}
    assert panels["eu-west-1"].to_dict("list") == {"(no az)": [0.25, 0.75]}


def test_the_chart_has_a_panel_per_region(tmp_path, monkeypatch):
    plt = report._plt()
    made: list = []
    subplots = plt.subplots

    def keep(*args, **kwargs):
        made.append(subplots(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(plt, "subplots", keep)
    name = report.chart_bytes_over_time(BY_MINUTE, tmp_path)
    assert name == "bytes_by_region_az.png" and (tmp_path / name).stat().st_size > 5000
    ((_, axes),) = made
    assert [ax.get_title(loc="left") for ax in axes[:, 0]] == ["eu-west-1", "us-east-1"]
    assert len(axes[1, 0].collections) == 2  # us-east-1: one stacked area per AZ


def test_text_table_aligns_numbers_right():
    assert report.text_table(["pair", "MB"], [["a -> b", "12.5"], ["long -> pair", "3.0"]]) == [
        "  pair            MB",
        "  a -> b        12.5",
        "  long -> pair   3.0",
    ]


def test_accuracy_lines_show_sides_and_shares_per_method():
    counts = pd.DataFrame(
        [("dredge", "correct", 90), ("dredge", "unattributed", 10),
         ("naive_current_owner", "correct", 80), ("naive_current_owner", "misattributed", 15),
         ("naive_current_owner", "unattributed", 5)],
        columns=["method", "outcome", "sides"],
    )  # fmt: skip
    assert report.accuracy_lines(counts) == [
        "  flow sides" + " " * 14 + "correct  misattributed  unattributed",
        "  Dredge" + " " * 15 + "90 (90.0%)" + " " * 7 + "0 (0.0%)" + " " * 4 + "10 (10.0%)",
        "  naive current owner  80 (80.0%)     15 (15.0%)      5 (5.0%)",
    ]


def test_basis_line_splits_correct_sides_by_address_and_eni():
    basis = pd.DataFrame(
        [("correct", "ip", 900), ("correct", "eni", 80), ("misattributed", "ip", 0),
         ("unattributed", "conflict", 2), ("unattributed", None, 18), ("correct", None, 40)],
        columns=["outcome", "attributed_by", "sides"],
    )  # fmt: skip
    # correct sides without a basis are the ones nobody owns (internet, AWS services)
    assert report.basis_line(basis) == (
        "  Dredge's correct sides: 900 by address, 80 through an ENI; 2 conflicts"
    )


def test_reason_lines_most_first_and_none():
    reasons = pd.DataFrame([("capturing", 3), ("peer", 40), ("surprise", 1)],
                           columns=["reason", "sides"])  # fmt: skip
    lines = report.reason_lines(reasons)
    assert [line.split()[-1] for line in lines] == ["sides", "40", "3", "1"]
    assert lines[1].strip().startswith("the peer's address")
    assert lines[3].strip().startswith("surprise")  # an unknown reason is shown as it is
    assert report.reason_lines(reasons.iloc[0:0]) == ["  (none)"]


def test_pairs_lines_show_megabytes_and_flows():
    pairs = pd.DataFrame(
        [("api", "us-east-1", "db", "eu-west-1", 12_345_678, 1234)],
        columns=["src_app", "src_region", "dst_app", "dst_region", "bytes", "flows"],
    )
    header, row = report.pairs_lines(pairs)
    assert header == "  source app (region) -> destination app (region)    MB  flows"
    assert row == "  api (us-east-1) -> db (eu-west-1)" + " " * 16 + "12.3  1,234"
