"""Great Expectations suites as code, one per table, and the derived columns they check.

Each expectation carries a stable check name in ``meta["check"]`` (``srcport_range``,
``ownership_no_overlap``...): summaries, tests and alerts refer to that name, not to GX's
expectation type. :func:`prepare` adds the derived columns (see ``quality.checks``) a suite
expects; :func:`build_suite` returns the suite for a table.
"""

from __future__ import annotations

from typing import Literal

import great_expectations as gx
import great_expectations.expectations as gxe
from pyspark.sql import DataFrame

from spark_jobs.quality import checks
from spark_jobs.schemas import PARSED_FLOW_SCHEMA, QUARANTINE_SCHEMA
from spark_jobs.transforms.enrich import ATTRIBUTED, BY_ENI, BY_IP, CONFLICT, SIDES, UNATTRIBUTED
from spark_jobs.transforms.flow_values import ACTIONS, LOG_STATUSES
from spark_jobs.transforms.output import ENRICHED_COLUMNS
from spark_jobs.transforms.ownership import OWNERSHIP_COLUMNS
from spark_jobs.transforms.parse import MAX_PORT, MAX_PROTOCOL

Table = Literal["parsed", "enriched", "ownership", "quarantine"]
TABLES: tuple[str, ...] = ("parsed", "enriched", "ownership", "quarantine")
FINAL_STATUSES = (ATTRIBUTED, UNATTRIBUTED)
BASES = [BY_IP, BY_ENI, CONFLICT]  # attributed_by (null: not attributed)
QUARANTINE_REASONS: tuple[str, ...] = (
    "bad_gzip",
    "bad_utf8",
    "bad_json",
    "oversized",
    "empty",
    "field_count",
    "unknown_field",
    "bad_separator",
    "bad_number",
    "bad_address",
    "port_range",
    "protocol_range",
    "bad_value",
    "start_after_end",
)
DEFAULT_MIN_ATTRIBUTED_SHARE = 0.5


def _named(name: str, expectation: gxe.Expectation) -> gxe.Expectation:
    expectation.meta = {"check": name}
    return expectation


def _columns_present(name: str, columns: tuple[str, ...] | list[str]) -> gxe.Expectation:
    return _named(
        name, gxe.ExpectTableColumnsToMatchSet(column_set=list(columns), exact_match=False)
    )


def parsed_expectations() -> list[gxe.Expectation]:
    """Value rules every parsed flow row satisfies (nulls allowed where the format lacks a
    field); also applied to the enriched table, which carries every parsed column."""
    out = [
        _named(f"{c}_range", gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=MAX_PORT))
        for c in ("srcport", "dstport")
    ]  # fmt: skip
    out += [
        _named("protocol_range", gxe.ExpectColumnValuesToBeBetween(column="protocol", min_value=0, max_value=MAX_PROTOCOL)),
        _named("bytes_non_negative", gxe.ExpectColumnValuesToBeBetween(column="bytes", min_value=0)),
        _named("packets_non_negative", gxe.ExpectColumnValuesToBeBetween(column="packets", min_value=0)),
        _named("start_not_after_end", gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="end_time", column_B="start_time", or_equal=True,
            ignore_row_if="either_value_is_missing")),
        _named("action_in_set", gxe.ExpectColumnValuesToBeInSet(column="action", value_set=list(ACTIONS))),
        _named("log_status_in_set", gxe.ExpectColumnValuesToBeInSet(column="log_status", value_set=list(LOG_STATUSES))),
        _named("addresses_valid", gxe.ExpectColumnValuesToBeNull(column="bad_address")),
        _named("flow_id_present", gxe.ExpectColumnValuesToNotBeNull(column="flow_id")),
    ]  # fmt: skip
    return out


def enriched_expectations(min_attributed_share: float, has_truth: bool) -> list[gxe.Expectation]:
    """Rules of the final enriched table (no pending rows); ``has_truth`` adds the
    no-misattribution check on the ``misattribution`` column."""
    out = [_columns_present("enriched_columns", ENRICHED_COLUMNS), *parsed_expectations()]
    for side in SIDES:
        col = f"{side}_attribution_status"
        out.append(
            _named(
                f"{col}_final",
                gxe.ExpectColumnValuesToBeInSet(column=col, value_set=list(FINAL_STATUSES)),
            )
        )
        out.append(_named(f"{col}_present", gxe.ExpectColumnValuesToNotBeNull(column=col)))
        by = f"{side}_attributed_by"
        out.append(
            _named(f"{by}_in_set", gxe.ExpectColumnValuesToBeInSet(column=by, value_set=BASES))
        )
    out += [
        _named("cross_region_consistent", gxe.ExpectColumnValuesToBeNull(column="cross_region_mismatch")),
        _named("attributed_share", gxe.ExpectColumnMeanToBeBetween(
            column="attributed_side_share", min_value=min_attributed_share, max_value=1.0)),
    ]  # fmt: skip
    if has_truth:
        out.append(
            _named("no_misattribution", gxe.ExpectColumnValuesToBeNull(column="misattribution"))
        )
    return out


def ownership_expectations() -> list[gxe.Expectation]:
    """Rules of the SCD2 ownership table."""
    return [
        _columns_present("ownership_columns", OWNERSHIP_COLUMNS),
        _named("ip_key_present", gxe.ExpectColumnValuesToNotBeNull(column="ip_key")),
        _named("valid_from_present", gxe.ExpectColumnValuesToNotBeNull(column="valid_from")),
        _named("valid_from_before_valid_to", gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="valid_to", column_B="valid_from", or_equal=False,
            ignore_row_if="either_value_is_missing")),
        _named("ownership_no_overlap", gxe.ExpectColumnValuesToBeNull(column="overlapping_ip")),
    ]  # fmt: skip


def quarantine_expectations() -> list[gxe.Expectation]:
    """Rules of the quarantine table."""
    return [
        _columns_present("quarantine_columns", QUARANTINE_SCHEMA.names),
        _named("reason_known", gxe.ExpectColumnValuesToBeInSet(column="reason", value_set=list(QUARANTINE_REASONS))),
        _named("reason_present", gxe.ExpectColumnValuesToNotBeNull(column="reason")),
        _named("raw_present", gxe.ExpectColumnValuesToNotBeNull(column="raw")),
    ]  # fmt: skip


def build_suite(
    table: str,
    *,
    min_attributed_share: float = DEFAULT_MIN_ATTRIBUTED_SHARE,
    has_truth: bool = False,
) -> gx.ExpectationSuite:
    """The expectation suite named ``dredge_<table>`` for one of :data:`TABLES`."""
    if table == "parsed":
        expectations = [
            _columns_present("parsed_columns", PARSED_FLOW_SCHEMA.names),
            *parsed_expectations(),
        ]
    elif table == "enriched":
        expectations = enriched_expectations(min_attributed_share, has_truth)
    elif table == "ownership":
        expectations = ownership_expectations()
    elif table == "quarantine":
        expectations = quarantine_expectations()
    else:
        raise ValueError(f"unknown table {table!r} (choose from {', '.join(TABLES)})")
    return gx.ExpectationSuite(name=f"dredge_{table}", expectations=expectations)


def prepare(table: str, df: DataFrame, truth_sides_df: DataFrame | None = None) -> DataFrame:
    """Add the derived columns the ``table`` suite checks (pure; see ``quality.checks``)."""
    if table == "parsed":
        return df.transform(checks.with_address_checks)
    if table == "enriched":
        out = (
            df.transform(checks.with_address_checks)
            .transform(checks.with_attributed_share)
            .transform(checks.with_cross_region_check)
        )
        if truth_sides_df is not None:
            out = checks.with_truth_mismatch(out, truth_sides_df)
        return out
    if table == "ownership":
        return df.transform(checks.with_overlap_flags)
    if table == "quarantine":
        return df
    raise ValueError(f"unknown table {table!r} (choose from {', '.join(TABLES)})")
