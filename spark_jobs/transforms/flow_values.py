"""What AWS writes in a flow-log line: the values of each enumerated field, the line's spacing
and its size. The parser checks these on the staged field text (``-`` is already null there),
so a value is compared exactly as AWS writes it: ``02`` is not ``2``, ``accept`` not ``ACCEPT``.

A **strict** field accepts only the values AWS documents: the set describes the flow itself
(what happened, at which layer, where) and has not changed since the field appeared, so a
value outside it is damage, not news. Should AWS add one, its lines are quarantined with
``bad_value`` (raw line kept) until the value is added here.

A **lenient** field names something AWS adds to without a new flow-log version: the
``pkt-*-aws-service`` fields take the service names of AWS's ``ip-ranges.json``, which gains
services every few months, and ``reject-reason`` gains a reason with each feature that can
drop traffic. Quarantining every new name would drop real traffic for as long as this list
lags AWS, so these accept any value shaped like AWS's names (:data:`OPEN_VALUE_RE`); a value
of another shape (lower case, punctuation, over-long) is still quarantined.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F

from spark_jobs.schemas import FIELDS, FlowField

ACTIONS: tuple[str, ...] = ("ACCEPT", "REJECT")
LOG_STATUSES: tuple[str, ...] = ("OK", "NODATA", "SKIPDATA")
TRAFFIC_TYPES: tuple[str, ...] = ("IPv4", "IPv6", "EFA")
FLOW_DIRECTIONS: tuple[str, ...] = ("ingress", "egress")
SUBLOCATION_TYPES: tuple[str, ...] = ("wavelength", "outpost", "localzone")
# 1 same VPC, 2 internet or gateway endpoint, 3 virtual private gateway, 4 intra-region
# peering, 5 inter-region peering, 6 local gateway, 7 gateway endpoint, 8 internet gateway
TRAFFIC_PATHS: tuple[str, ...] = tuple(str(p) for p in range(1, 9))
# 0 not encrypted, 1 Nitro-encrypted, 2 encrypted by the application, 3 both
ENCRYPTION_STATUSES: tuple[str, ...] = ("0", "1", "2", "3")
# TCP's flag byte: AWS documents FIN 1, SYN 2, RST 4, PSH 8, ACK 16, URG 32 and ORs the flags
# seen in the capture window (SYN-ACK 18, SYN+FIN 3); ECE and CWR are the byte's other bits.
MAX_TCP_FLAGS = 255
TCP_FLAGS: tuple[str, ...] = tuple(str(m) for m in range(MAX_TCP_FLAGS + 1))
# A line's version is the highest version among its format's fields, so a newer one comes
# only with fields the catalog (schemas.FIELDS) has to learn first.
MIN_VERSION = 2
MAX_VERSION = max(f.version for f in FIELDS)
VERSIONS: tuple[str, ...] = tuple(str(v) for v in range(MIN_VERSION, MAX_VERSION + 1))
# Lenient fields: the names AWS documents today (the check accepts any OPEN_VALUE_RE value).
AWS_SERVICES: tuple[str, ...] = (
    "AMAZON", "AMAZON_APPFLOW", "AMAZON_CONNECT", "API_GATEWAY", "CHIME_MEETINGS",
    "CHIME_VOICECONNECTOR", "CLOUD9", "CLOUDFRONT", "CODEBUILD", "DYNAMODB", "EBS", "EC2",
    "EC2_INSTANCE_CONNECT", "GLOBALACCELERATOR", "KINESIS_VIDEO_STREAMS", "ROUTE53",
    "ROUTE53_HEALTHCHECKS", "ROUTE53_HEALTHCHECKS_PUBLISHING", "ROUTE53_RESOLVER", "S3",
    "WORKSPACES_GATEWAYS",
)  # fmt: skip
REJECT_REASONS: tuple[str, ...] = ("BPA",)
OPEN_VALUE_RE = r"^[A-Z0-9_]{1,64}$"
MISSING = "-"
# CloudWatch Logs' largest log event; no flow-log line comes near it.
MAX_LINE_BYTES = 1024 * 1024
_ENDS = " \t\r\n"  # what the parser trims off a line's ends before splitting it


@dataclass(frozen=True)
class ValueRule:
    """The values one enumerated field may take.

    ``values``: the documented values (as text). ``pattern``: None for a strict field; for a
    lenient one, the shape any accepted value has. ``may_be_empty``: ``-`` is allowed.
    """

    field: str
    values: tuple[str, ...]
    pattern: str | None = None
    may_be_empty: bool = True

    @property
    def is_strict(self) -> bool:
        """Only the documented values pass."""
        return self.pattern is None

    def allows(self, text: Column) -> Column:
        """True when the (non-null) ``text`` is an accepted value."""
        return text.isin(*self.values) if self.pattern is None else text.rlike(self.pattern)


VALUE_RULES: tuple[ValueRule, ...] = (
    ValueRule("version", VERSIONS),
    ValueRule("action", ACTIONS),  # '-' on NODATA / SKIPDATA lines
    ValueRule("log-status", LOG_STATUSES, may_be_empty=False),
    ValueRule("tcp-flags", TCP_FLAGS),
    ValueRule("type", TRAFFIC_TYPES),
    ValueRule("sublocation-type", SUBLOCATION_TYPES),
    ValueRule("pkt-src-aws-service", AWS_SERVICES, OPEN_VALUE_RE),
    ValueRule("pkt-dst-aws-service", AWS_SERVICES, OPEN_VALUE_RE),
    ValueRule("flow-direction", FLOW_DIRECTIONS),
    ValueRule("traffic-path", TRAFFIC_PATHS),
    ValueRule("reject-reason", REJECT_REASONS, OPEN_VALUE_RE),
    ValueRule("encryption-status", ENCRYPTION_STATUSES),
)
RULES_BY_FIELD: dict[str, ValueRule] = {r.field: r for r in VALUE_RULES}


def failing_values(
    fields: tuple[FlowField, ...], staged: Callable[[FlowField], Column], has_status: Column
) -> list[tuple[str, Column]]:
    """(field name, the text that is not allowed, else null) for each ruled field of ``fields``.

    Args:
        fields: the fields to check (rules of other fields are skipped).
        staged: a field -> its staged text (null for ``-`` and for a field the format lacks).
        has_status: whether the row's format has ``log-status``. It is the one field whose
            presence the parser stages, so it is the one field that can forbid ``-``.
    """
    out: list[tuple[str, Column]] = []
    for f in fields:
        rule = RULES_BY_FIELD.get(f.name)
        if rule is None:
            continue
        text = staged(f)
        failing = F.when(text.isNotNull() & ~rule.allows(text), text)
        if not rule.may_be_empty:
            if f.name != "log-status":
                raise ValueError(f"{f.name}: only log-status can forbid '-'")
            failing = F.when(text.isNull() & has_status, F.lit(MISSING)).otherwise(failing)
        out.append((f.name, failing))
    return out


def is_oversized(line: Column) -> Column:
    """The line is longer than any log event CloudWatch Logs delivers."""
    return F.octet_length(line) > MAX_LINE_BYTES


def oversized_detail(line: Column) -> Column:
    """The detail of an oversized line: its size and the cap."""
    return F.concat(
        F.lit("line is "),
        F.octet_length(line).cast("string"),
        F.lit(f" bytes (max {MAX_LINE_BYTES})"),
    )


def trim_ends(line: Column) -> Column:
    """``line`` without the whitespace (space, tab, CR, LF) the parser ignores at its ends.
    Most lines have none and are returned as they are: Spark's trim by a set of characters
    allocates and walks a table of the whole line's characters on every call."""
    at_ends = [line.startswith(c) | line.endswith(c) for c in _ENDS]
    return F.when(
        functools.reduce(lambda a, b: a | b, at_ends), F.btrim(line, F.lit(_ENDS))
    ).otherwise(line)


def has_bad_spacing(line: Column) -> Column:
    """Fields are separated by something other than one space (AWS writes exactly one).

    The line's ends are not checked: the parser trims them (a CRLF file's ``\\r``).
    """
    inner = trim_ends(line)
    return inner.contains("\t") | inner.contains("  ")


def spacing_detail(line: Column) -> Column:
    """The detail of a line with bad spacing: a tab, else repeated spaces."""
    return F.when(trim_ends(line).contains("\t"), F.lit("tab between fields")).otherwise(
        F.lit("repeated space between fields")
    )
