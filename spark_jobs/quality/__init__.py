"""Data-quality gates: Great Expectations 1.x suites as code (ephemeral context, Spark
dataframe datasource).

* ``quality.checks`` - pure transforms deriving the columns some checks need
  (``bad_address``, ``attributed_side_share``, ``cross_region_mismatch``, ``overlapping_ip``,
  ``misattribution``).
* ``quality.suites`` - one suite per table (``parsed``, ``enriched``, ``ownership``,
  ``quarantine``); every expectation is named by ``meta["check"]``.
* ``quality.runner`` - ``validate_table(table, df)`` -> ``Validation`` (per-check outcome,
  readable summary, GX result JSON) and ``validate_sample(df, suite, fraction)`` for a
  micro-batch writer's metrics.

Cost: GX computes its metrics with one or more Spark jobs each (a 6-expectation suite needed
32 metrics), so a validation costs seconds even on a few rows; ``bench.dq_sample`` measures it
(``bench/results/dq_sample.json``). In-stream validation is therefore opt-in and sampled.
"""
