"""Options of the ``dredge-kinesis`` source, parsed case-insensitively and validated early."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from spark_jobs.sources.kinesis.client import Connection
from spark_jobs.sources.kinesis.offsets import OffsetError, parse_starting_position

KNOWN = {
    "streamname": "streamName",
    "region": "region",
    "endpointurl": "endpointUrl",
    "rolearn": "roleArn",
    "startingposition": "startingPosition",
    "maxrecordsperbatch": "maxRecordsPerBatch",
    "maxbytesperbatch": "maxBytesPerBatch",
    "metadatapath": "metadataPath",
}
_CREDENTIAL_HINTS = ("secret", "accesskey", "access_key", "password", "token", "credential")
_STREAM_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,128}$")


class KinesisOptionError(ValueError):
    """A ``dredge-kinesis`` option is missing or invalid; the message names it."""


def _positive_int(name: str, raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise KinesisOptionError(f"{name}: expected a positive integer, got {raw!r}") from None
    if value <= 0:
        raise KinesisOptionError(f"{name}: expected a positive integer, got {raw!r}")
    return value


@dataclass(frozen=True)
class KinesisOptions:
    """Validated source options."""

    streams: tuple[str, ...]
    connection: Connection
    starting_position: str
    max_records: int | None
    max_bytes: int | None
    metadata_path: str

    @staticmethod
    def parse(options: Mapping[str, str]) -> KinesisOptions:
        """Validate ``options`` (any key case). Raises KinesisOptionError naming the option."""
        opts = {k.lower(): v for k, v in options.items()}
        for key in opts:
            if any(hint in key for hint in _CREDENTIAL_HINTS):
                raise KinesisOptionError(
                    f"{key}: credentials are not accepted as options; use the default AWS "
                    "credential chain (environment, profile, instance role) or roleArn"
                )
            if key not in KNOWN and not key.startswith("spark."):
                raise KinesisOptionError(
                    f"{key}: unknown option; known options: {sorted(KNOWN.values())}"
                )
        streams = tuple(s.strip() for s in opts.get("streamname", "").split(",") if s.strip())
        if not streams:
            raise KinesisOptionError("streamName: required (one name or a comma-separated list)")
        for name in streams:
            if not _STREAM_NAME.match(name):
                raise KinesisOptionError(f"streamName: invalid Kinesis stream name {name!r}")
        if not opts.get("metadatapath"):
            raise KinesisOptionError(
                "metadataPath: required; a durable folder owned by this query (e.g. "
                "'<checkpointLocation>/sources/kinesis') where executors record how far they read"
            )
        region = opts.get("region") or ""
        if not region:
            raise KinesisOptionError("region: required (e.g. 'us-east-1')")
        position = opts.get("startingposition", "TRIM_HORIZON")
        try:
            parse_starting_position(position, int(time.time() * 1000))
        except OffsetError as exc:
            raise KinesisOptionError(str(exc)) from None
        return KinesisOptions(
            streams=streams,
            connection=Connection(
                region, opts.get("endpointurl") or None, opts.get("rolearn") or None
            ),
            starting_position=position,
            max_records=_positive_int("maxRecordsPerBatch", opts.get("maxrecordsperbatch")),
            max_bytes=_positive_int("maxBytesPerBatch", opts.get("maxbytesperbatch")),
            metadata_path=opts["metadatapath"],
        )
