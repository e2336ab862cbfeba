"""Thin Great Expectations wiring: validate a Spark DataFrame against a suite in an ephemeral
context and turn the result into one readable outcome per check.

GX runs one or more Spark jobs per metric, so the prepared DataFrame is persisted for the
validation and released afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import great_expectations as gx
from great_expectations.data_context.types.base import ProgressBarsConfig
from pyspark.sql import DataFrame

from spark_jobs.quality.suites import DEFAULT_MIN_ATTRIBUTED_SHARE, build_suite, prepare

RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 5}
# BASIC skips SUMMARY's value counts of the unexpected values (extra Spark jobs per check).
SAMPLE_RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 3}


@dataclass(frozen=True)
class CheckOutcome:
    """One expectation's result: its check name, GX type, the column(s) and what was seen."""

    check: str
    expectation: str
    columns: str
    success: bool
    observed_value: Any
    unexpected_count: int | None
    element_count: int | None
    sample: tuple[Any, ...]

    def observed(self) -> str:
        """``observed=<value>`` for aggregate checks, ``unexpected=<n>/<rows> e.g. [...]``
        for per-row checks."""
        if self.unexpected_count is None:
            return f"observed={self.observed_value!r}"
        text = f"unexpected={self.unexpected_count}/{self.element_count}"
        return f"{text} e.g. {list(self.sample)!r}" if self.sample else text

    def line(self) -> str:
        """``PASS srcport_range  expect_column_values_to_be_between(srcport)  unexpected=0/9``."""
        verdict = "PASS" if self.success else "FAIL"
        return f"{verdict} {self.check:<34} {self.expectation}({self.columns})  {self.observed()}"


@dataclass(frozen=True)
class Validation:
    """A suite's result: overall success, the outcomes in suite order and GX's own JSON."""

    suite: str
    success: bool
    outcomes: tuple[CheckOutcome, ...]
    result_json: dict[str, Any]
    seconds: float

    def outcome(self, check: str) -> CheckOutcome:
        """The outcome of the check called ``check`` (KeyError if the suite has none)."""
        for o in self.outcomes:
            if o.check == check:
                return o
        raise KeyError(check)

    @property
    def failed(self) -> list[str]:
        """Names of the failed checks."""
        return [o.check for o in self.outcomes if not o.success]

    def summary(self) -> str:
        """One line per check, then a verdict line."""
        lines = [o.line() for o in self.outcomes]
        n_bad = len(self.failed)
        verdict = "PASSED" if self.success else f"FAILED ({n_bad} of {len(self.outcomes)} checks)"
        lines.append(f"{self.suite}: {verdict} in {self.seconds:.1f}s")
        return "\n".join(lines)


def _columns(kwargs: dict[str, Any]) -> str:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_A" in kwargs:
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    return "table"


def _outcome(result: Any) -> CheckOutcome:
    cfg = result.expectation_config
    details = dict(result.result or {})
    meta = cfg.meta or {}
    return CheckOutcome(
        check=str(meta.get("check", cfg.type)),
        expectation=str(cfg.type),
        columns=_columns(dict(cfg.kwargs)),
        success=bool(result.success),
        observed_value=details.get("observed_value"),
        unexpected_count=details.get("unexpected_count"),
        element_count=details.get("element_count"),
        sample=tuple(details.get("partial_unexpected_list") or ()),
    )


def validate(
    df: DataFrame, suite: gx.ExpectationSuite, result_format: dict[str, Any] | None = None
) -> Validation:
    """Validate ``df`` against ``suite`` in a fresh ephemeral context (no files, no stores);
    ``result_format`` defaults to :data:`RESULT_FORMAT`."""
    started = time.monotonic()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    # persist=False: GX would persist the frame and never release it; we own the cache.
    source = context.data_sources.add_spark(name="dredge", persist=False)
    asset = source.add_dataframe_asset(name=suite.name)
    batch_def = asset.add_batch_definition_whole_dataframe("whole")
    cached = df.persist()
    try:
        batch = batch_def.get_batch(batch_parameters={"dataframe": cached})
        result = batch.validate(suite, result_format=result_format or RESULT_FORMAT)
    finally:
        cached.unpersist()
    order = {e.meta.get("check") if e.meta else None: i for i, e in enumerate(suite.expectations)}
    outcomes = sorted((_outcome(r) for r in result.results), key=lambda o: order.get(o.check, 0))
    return Validation(
        suite=suite.name,
        success=bool(result.success),
        outcomes=tuple(outcomes),
        result_json=result.to_json_dict(),
        seconds=time.monotonic() - started,
    )


def validate_table(
    table: str,
    df: DataFrame,
    *,
    min_attributed_share: float = DEFAULT_MIN_ATTRIBUTED_SHARE,
    truth_sides_df: DataFrame | None = None,
    result_format: dict[str, Any] | None = None,
) -> Validation:
    """Prepare ``df`` (one of the suite tables) and validate it against its suite."""
    suite = build_suite(
        table, min_attributed_share=min_attributed_share, has_truth=truth_sides_df is not None
    )
    return validate(prepare(table, df, truth_sides_df), suite, result_format)


def _error_text(err: BaseException) -> str:
    """``Type: first line of the message`` (at most 300 characters of it)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:300]}" if lines else type(err).__name__


def validate_sample(
    df: DataFrame,
    suite_name: str,
    fraction: float,
    *,
    seed: int | None = None,
    min_attributed_share: float = DEFAULT_MIN_ATTRIBUTED_SHARE,
) -> dict[str, Any]:
    """Validate a random ``fraction`` of a (batch) DataFrame; never raises.

    Meant for a micro-batch writer: the returned dict is JSON-ready for the batch metrics,
    ``{"suite", "fraction", "success", "failed": [check...], "observed": {check: text},
    "rows", "seconds"}``; ``rows`` is the number of rows GX checked (its ``element_count``,
    so no extra Spark job), null when the suite has no per-row check. ``suite_name`` is a table (``enriched``) or a suite (``dredge_enriched``).
    If the validation itself cannot run, ``success`` is null and ``error`` names why: the
    writer calls this after its Delta and Kafka commits, so an exception here would fail
    (and, on every retry, fail again) a batch whose data is fine.
    """
    table = suite_name.removeprefix("dredge_")
    started = time.monotonic()
    try:
        result = validate_table(
            table,
            df.sample(fraction=fraction, seed=seed),
            min_attributed_share=min_attributed_share,
            result_format=SAMPLE_RESULT_FORMAT,
        )
    except Exception as err:  # a monitor must not stop the stream
        return {
            "suite": f"dredge_{table}",
            "fraction": fraction,
            "success": None,
            "error": _error_text(err),
            "seconds": round(time.monotonic() - started, 3),
        }
    bad = [o for o in result.outcomes if not o.success]
    counts = [o.element_count for o in result.outcomes if o.element_count is not None]
    return {
        "suite": result.suite,
        "fraction": fraction,
        "success": result.success,
        "failed": [o.check for o in bad],
        "observed": {o.check: o.observed() for o in bad},
        "rows": max(counts) if counts else None,
        "seconds": round(result.seconds, 3),
    }
