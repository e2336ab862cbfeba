"""Flow-log lines -> typed flows, driven by the flow log's format string, built-ins only.

The format may list any subset of fields in any order; the output always has the same narrow
columns (:data:`~spark_jobs.schemas.PARSED_FLOW_SCHEMA`): a column per core field, null where
the format lacks it, and the format's other fields as text in one ``extra`` map, so
downstream code is the same whatever the flow log's version. ``-`` is null. Rows that
cannot be trusted keep a ``quarantine_reason`` (checked in this order): ``field_count``,
``unknown_field`` (header mode), ``bad_utf8``, ``oversized``, ``bad_separator``,
``bad_number``, ``bad_address``, ``port_range``, ``protocol_range``, ``bad_value``,
``start_after_end`` (docs/quarantine.md has an example of each).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import MapType, StringType

from spark_jobs.schemas import (
    CORE_FIELDS,
    DEFAULT_FORMAT,
    EXTRA_COLUMN,
    EXTRA_FIELDS,
    FIELDS,
    FIELDS_BY_NAME,
    PARSED_FLOW_SCHEMA,
    PORT_COLUMNS,
    PROVENANCE_COLUMNS,
    FlowField,
    FormatError,
    parse_format_string,
)
from spark_jobs.transforms import flow_values
from spark_jobs.transforms.ip import to_canonical_ip, to_ip_key

MISSING = "-"
TRAFFIC_STATUS = "OK"
REPLACEMENT_CHAR = "\ufffd"
MAX_PORT = 65535
MAX_PROTOCOL = 255
_DIGITS_RE = r"^[0-9]{1,19}$"
# 11 digits of epoch seconds reach year 5138; more would overflow timestamp_seconds.
_EPOCH_RE = r"^[0-9]{1,11}$"
_TOKENS = "_tokens"
_HEADER = "_header"
EXTRA_COLUMNS: tuple[str, ...] = ("quarantine_reason", "quarantine_detail", "line")
PARSED_COLUMNS: tuple[str, ...] = (*PARSED_FLOW_SCHEMA.names, *EXTRA_COLUMNS)


@dataclass(frozen=True)
class _Layout:
    """Where each field's token is: a fixed format, or a per-row header column."""

    token_of: Callable[[str], Column | None]  # field name -> token (None: never present)
    present: Callable[[str], Column]  # field name -> does this row's format have it
    count_ok: Column
    count_detail: Column
    extra_check: Column | None = None  # a reason column checked right after field_count


def _split(text: Column) -> Column:
    """The fields of ``text`` (its ends trimmed) between runs of spaces and tabs. A line
    separated by single spaces (as AWS writes) is split on the space, which Java splits
    without a regex; the regex, compiled again by every call, only for the others."""
    inner = flow_values.trim_ends(text)
    spaced = inner.contains("\t") | inner.contains("  ")
    return F.when(spaced, F.split(inner, "[ \t]+")).otherwise(F.split(inner, " "))


def _s(field: FlowField) -> str:
    return f"_s_{field.column}"


def _typed(field: FlowField, text: Column) -> Column:
    if field.kind in ("int", "long", "epoch"):
        pattern = _EPOCH_RE if field.kind == "epoch" else _DIGITS_RE
        as_long = F.when(text.rlike(pattern), text.try_cast("long"))
        if field.kind == "epoch":
            return F.timestamp_seconds(as_long)
        return as_long if field.kind == "long" else as_long.try_cast("int")
    if field.kind == "address":
        return to_ip_key(text)
    return text


def _named(cols: list[tuple[str, Column]]) -> Column:
    """', '-joined ``name=value`` of the failing fields (``cols``: (name, failing value))."""
    return F.concat_ws(", ", *(F.when(v.isNotNull(), F.concat(F.lit(f"{n}="), v)) for n, v in cols))


def _any_set(cols: list[tuple[str, Column]]) -> Column:
    """True when any failing value is set (a plain OR keeps it in generated code)."""
    return functools.reduce(lambda a, b: a | b, (v.isNotNull() for _, v in cols), F.lit(False))


def _checks(fields: tuple[FlowField, ...]) -> list[tuple[str, Column, Column]]:
    """(reason, is_failing, detail) per value check, on the staged ``_s_*``/typed columns."""

    def failing(
        pred: Callable[[FlowField], Column], kinds: tuple[str, ...]
    ) -> list[tuple[str, Column]]:
        return [(f.name, F.when(pred(f), F.col(_s(f)))) for f in fields if f.kind in kinds]

    def typed_col(f: FlowField) -> Column:
        return F.col(f"{f.column}_key" if f.kind == "address" else f.column)

    def bad(f: FlowField) -> Column:
        return F.col(_s(f)).isNotNull() & typed_col(f).isNull()

    numbers = failing(bad, ("int", "long", "epoch"))
    addresses = failing(bad, ("address",))
    ports = [
        (c, F.when(~F.col(c).between(0, MAX_PORT), F.col(c).cast("string"))) for c in PORT_COLUMNS
    ]
    protocol = [
        (
            "protocol",
            F.when(~F.col("protocol").between(0, MAX_PROTOCOL), F.col("protocol").cast("string")),
        )
    ]
    start_after_end = F.col("start_time") > F.col("end_time")
    window = F.concat(
        F.lit("start="), F.col("_s_start_time"), F.lit(" > end="), F.col("_s_end_time")
    )
    values = flow_values.failing_values(fields, lambda f: F.col(_s(f)), F.col("_has_status"))
    line = F.col("line")
    return [
        ("oversized", flow_values.is_oversized(line), flow_values.oversized_detail(line)),
        ("bad_separator", flow_values.has_bad_spacing(line), flow_values.spacing_detail(line)),
        (
            "bad_number",
            _any_set(numbers),
            _named(numbers),
        ),
        (
            "bad_address",
            _any_set(addresses),
            _named(addresses),
        ),
        (
            "port_range",
            _any_set(ports),
            _named(ports),
        ),
        ("protocol_range", protocol[0][1].isNotNull(), _named(protocol)),
        ("bad_value", _any_set(values), _named(values)),
        ("start_after_end", F.coalesce(start_after_end, F.lit(False)), window),
    ]


def _raw_columns(layout: _Layout) -> tuple[Column, ...]:
    texts = []
    for f in FIELDS:
        token = layout.token_of(f.name)
        text = F.lit(None).cast("string") if token is None else F.when(token != MISSING, token)
        texts.append(text.alias(_s(f)))
    extra = layout.extra_check if layout.extra_check is not None else F.lit(None).cast("string")
    return (
        _rare_map(layout).alias("_rare"),
        *(F.col(c) for c in PROVENANCE_COLUMNS),
        F.col("line"),
        layout.count_ok.alias("_count_ok"),
        layout.count_detail.alias("_count_detail"),
        extra.alias("_extra"),
        layout.present("log-status").alias("_has_status"),
        *texts,
    )


def _rare_map(layout: _Layout) -> Column:
    """The ``extra`` map: the layout's non-core fields that hold a value, by column name;
    null when none does (a v2 format has none, so its rows carry no map at all)."""
    entries = []
    for f in EXTRA_FIELDS:
        token = layout.token_of(f.name)
        if token is not None:
            entry = F.struct(F.lit(f.column).alias("key"), token.alias("value"))
            entries.append(F.when(token != MISSING, entry))
    if not entries:
        return F.lit(None).cast(MapType(StringType(), StringType()))
    # built-ins with generated code (a lambda, as in map_filter, is interpreted per row)
    present = F.array_compact(F.array(*entries))
    return F.when(F.size(present) > 0, F.map_from_entries(present))


# The column expressions are built once per layout and reused: they only name columns, and
# building them (thousands of JVM calls) cost more than a whole small micro-batch.
@functools.cache
def _parse_columns() -> tuple[tuple[Column, ...], Column, tuple[Column, ...]]:
    """(typed columns, the quarantine reason, the final columns). The reason is a column of
    its own, computed once per row; the detail is then built only for the reason found: in
    one CASE with the reason, every check after the first would be evaluated again for the
    detail of every valid row (Spark does not share a CASE's later conditions)."""
    typed = tuple(
        _typed(f, F.col(_s(f))).alias(f"{f.column}_key" if f.kind == "address" else f.column)
        for f in FIELDS
    )
    # Spark's text reader turns bytes that are not UTF-8 into U+FFFD; no flow-log field has it
    not_utf8 = F.col("line").contains(REPLACEMENT_CHAR)
    reason = (
        F.when(~F.col("_count_ok"), F.lit("field_count"))
        .when(F.col("_extra").isNotNull(), F.lit("unknown_field"))
        .when(not_utf8, F.lit("bad_utf8"))
    )
    found = F.col("quarantine_reason")
    detail = (
        F.when(found == "field_count", F.col("_count_detail"))
        .when(found == "unknown_field", F.col("_extra"))
        .when(found == "bad_utf8", F.lit("line has bytes that are not UTF-8"))
    )
    for code, failing, why in _checks(FIELDS):
        reason = reason.when(failing, F.lit(code))
        detail = detail.when(found == code, why)
    final = (
        *_final_columns(),
        found,
        detail.alias("quarantine_detail"),
        # only a quarantined row needs its raw text (a valid one is all in its typed
        # columns): the batch caches these rows, and the raw text would be most of the cache
        F.when(found.isNotNull(), F.col("line")).alias("line"),
    )
    return typed, reason.alias("quarantine_reason"), final


def _parse(staged_df: DataFrame, raw_columns: tuple[Column, ...]) -> DataFrame:
    typed, reason, final = _parse_columns()
    return staged_df.select(*raw_columns).select("*", *typed).select("*", reason).select(*final)


def _final_columns() -> list[Column]:
    cols: list[Column] = []
    for f in CORE_FIELDS:
        if f.kind == "address":
            # A valid dotted quad (no leading zeros) is already canonical; IPv6 is rewritten.
            key = F.col(f"{f.column}_key")
            text = F.when(F.col(_s(f)).contains("."), F.col(_s(f))).otherwise(to_canonical_ip(key))
            cols.append(F.when(key.isNotNull(), text).alias(f.column))
        else:
            cols.append(F.col(f.column).cast(f.spark_type).alias(f.column))
    cols.append(F.col("_rare").alias(EXTRA_COLUMN))
    cols += [F.col(f"{f.column}_key") for f in FIELDS if f.kind == "address"]
    is_ok = F.coalesce(F.col("log_status") == TRAFFIC_STATUS, F.lit(False))
    cols.append(F.when(F.col("_has_status"), is_ok).otherwise(F.lit(True)).alias("is_traffic"))
    sub = F.coalesce(F.col("origin_sub").cast("string"), F.lit(""))
    cols.append(F.sha2(F.concat_ws("|", "origin", "origin_offset", sub), 256).alias("flow_id"))
    cols += [F.col(c) for c in PROVENANCE_COLUMNS]
    return cols


def parse_flow_lines(lines_df: DataFrame, log_format: str | None = None) -> DataFrame:
    """Flow lines in one known format -> typed flows with a ``quarantine_reason``.

    Needs ``line`` and the provenance columns (``origin, origin_offset, origin_sub,
    arrival_time``). Returns :data:`PARSED_COLUMNS`: every field of
    :data:`~spark_jobs.schemas.PARSED_FLOW_SCHEMA` (canonical address text plus ``*_key``,
    ``is_traffic``, ``flow_id``, provenance), then ``quarantine_reason`` (null = valid),
    ``quarantine_detail`` and the original ``line`` (null on a valid row).

    Args:
        lines_df: the flow lines.
        log_format: ``"${version} ${account-id} ..."``; None means the v2 default format.

    Raises:
        FormatError: the format string names an unknown field (raised when building the plan).
    """
    names = parse_format_string(DEFAULT_FORMAT if log_format is None else log_format)
    tokens, raw = _fixed_columns(names)
    return _parse(lines_df.withColumn(_TOKENS, tokens), raw)


@functools.lru_cache(maxsize=64)
def _fixed_columns(names: tuple[str, ...]) -> tuple[Column, tuple[Column, ...]]:
    index = {name: i + 1 for i, name in enumerate(names)}
    tokens = F.col(_TOKENS)

    def token_of(name: str) -> Column | None:
        return F.try_element_at(tokens, F.lit(index[name])) if name in index else None

    layout = _Layout(
        token_of=token_of,
        present=lambda name: F.lit(name in index),
        count_ok=F.size(tokens) == len(names),
        count_detail=F.concat(
            F.lit(f"expected {len(names)} fields, got "), F.size(tokens).cast("string")
        ),
    )
    return _split(F.col("line")), _raw_columns(layout)


def parse_flow_lines_with_header(lines_df: DataFrame) -> DataFrame:
    """Flow lines whose format travels with them (S3 text files) -> like :func:`parse_flow_lines`.

    Needs ``line``, ``log_format`` (the file's header line: ``version account-id ...``, or
    ``${...}`` tokens) and the provenance columns. A header naming a field this catalog does
    not know quarantines its lines with ``unknown_field``.
    """
    tokens, header, raw = _header_columns()
    staged = lines_df.withColumn(_TOKENS, tokens).withColumn(_HEADER, header)
    return _parse(staged, raw)


@functools.cache
def _header_columns() -> tuple[Column, Column, tuple[Column, ...]]:
    known = F.array(*(F.lit(n) for n in FIELDS_BY_NAME))
    header = F.transform(
        _split(F.col("log_format")), lambda t: F.regexp_replace(t, r"^\$\{|\}$", "")
    )
    tokens, hdr = F.col(_TOKENS), F.col(_HEADER)

    def token_of(name: str) -> Column:
        pos = F.array_position(hdr, F.lit(name)).cast("int")
        return F.when(pos > 0, F.try_element_at(tokens, pos))

    unknown = F.array_join(F.filter(hdr, lambda t: ~F.array_contains(known, t)), ", ")
    repeated = F.size(F.array_distinct(hdr)) != F.size(hdr)
    layout = _Layout(
        token_of=token_of,
        present=lambda name: F.array_contains(hdr, F.lit(name)),
        count_ok=F.coalesce(F.size(tokens) == F.size(hdr), F.lit(False)),  # null header: bad
        count_detail=F.when(F.col("log_format").isNull(), F.lit("no format header line")).otherwise(
            F.concat(
                F.lit("expected "),
                F.size(hdr).cast("string"),
                F.lit(" fields, got "),
                F.size(tokens).cast("string"),
            )
        ),
        extra_check=F.when(unknown != "", F.concat(F.lit("unknown fields: "), unknown)).when(
            repeated, F.concat(F.lit("repeated fields in header: "), F.col("log_format"))
        ),
    )
    return _split(F.col("line")), header, _raw_columns(layout)


def parse_flow_lines_by_format(lines_df: DataFrame, headers: Sequence[str | None]) -> DataFrame:
    """Like :func:`parse_flow_lines_with_header`, faster when the batch's distinct headers
    are known: lines with one of ``headers`` are parsed with that fixed layout (no per-row
    header lookups), any other line by the per-row path. Same rows, same columns.

    Args:
        lines_df: as for :func:`parse_flow_lines_with_header`.
        headers: *all* distinct ``log_format`` values of ``lines_df`` (the caller reads them
            from the batch); a header that is not a valid format is left to the per-row path,
            which quarantines its lines. Every distinct value must be listed: when all listed
            headers are valid, no per-row path is built and unlisted lines are not parsed.
    """
    distinct = set(headers)
    usable = [h for h in distinct if h is not None and _is_valid_format(h)]
    if not usable:
        return parse_flow_lines_with_header(lines_df)
    fmt = F.col("log_format")
    parts = [parse_flow_lines(lines_df.where(fmt == h), h) for h in sorted(usable)]
    if len(usable) < len(distinct):  # a null or invalid header: those lines go per row
        listed = F.coalesce(fmt.isin(*usable), F.lit(False))
        parts.append(parse_flow_lines_with_header(lines_df.where(~listed)))
    return functools.reduce(lambda a, b: a.unionByName(b), parts)


def _is_valid_format(header: str) -> bool:
    try:
        parse_format_string(header)
    except FormatError:
        return False
    return True


def filter_valid_flows(parsed_df: DataFrame) -> DataFrame:
    """Parsed rows -> valid flows only, in exactly :data:`PARSED_FLOW_SCHEMA`.

    NODATA/SKIPDATA rows are valid (kept, ``is_traffic`` false).
    """
    return parsed_df.filter(F.col("quarantine_reason").isNull()).select(*PARSED_FLOW_SCHEMA.names)


def to_quarantine_rows(parsed_df: DataFrame) -> DataFrame:
    """Parsed rows -> quarantine rows (:data:`~spark_jobs.schemas.QUARANTINE_SCHEMA`) for bad lines."""
    return parsed_df.filter(F.col("quarantine_reason").isNotNull()).select(
        *PROVENANCE_COLUMNS,
        F.col("quarantine_reason").alias("reason"),
        F.col("quarantine_detail").alias("detail"),
        F.col("line").alias("raw"),
        F.current_timestamp().alias("quarantined_at"),
    )
