"""KPL aggregation format: a tiny pure-Python protobuf codec (no protobuf dependency).

An aggregated Kinesis record is ``F3 89 9A C2`` + ``AggregatedRecord`` (protobuf) + the MD5
of the protobuf bytes. The messages (from the KPL's ``messages.proto``)::

    message AggregatedRecord {
      repeated string partition_key_table     = 1;
      repeated string explicit_hash_key_table = 2;
      repeated Record records                 = 3;
    }
    message Record {
      required uint64 partition_key_index     = 1;
      optional uint64 explicit_hash_key_index = 2;
      required bytes  data                    = 3;
      repeated Tag    tags                    = 4;   // skipped when decoding
    }

A blob that lacks the magic, is too short, or whose MD5 does not match is *not* aggregated
(the KPL's own de-aggregator does the same): it is returned as one plain record.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MAGIC = b"\xf3\x89\x9a\xc2"
_DIGEST_LEN = 16
_VARINT, _LEN = 0, 2


@dataclass(frozen=True)
class SubRecord:
    """One user record inside an aggregated Kinesis record."""

    partition_key: str
    data: bytes
    explicit_hash_key: str | None = None


class KplDecodeError(ValueError):
    """The protobuf body of an aggregated record is malformed."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = _varint((number << 3) | wire)
    if wire == _VARINT:
        assert isinstance(payload, int)
        return key + _varint(payload)
    assert isinstance(payload, bytes)
    return key + _varint(len(payload)) + payload


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise KplDecodeError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs; varints as int, length-delimited as bytes."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
            out.append((number, value))
        elif wire == _LEN:
            length, pos = _read_varint(buf, pos)
            if pos + length > len(buf):
                raise KplDecodeError("truncated length-delimited field")
            out.append((number, buf[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise KplDecodeError(f"unsupported wire type {wire}")
    if pos != len(buf):
        raise KplDecodeError("trailing bytes")
    return out


def encode(records: list[SubRecord]) -> bytes:
    """Aggregate ``records`` the way the KPL does (used by tests and the bench)."""
    keys: list[str] = []
    hash_keys: list[str] = []
    body = bytearray()
    for rec in records:
        if rec.partition_key not in keys:
            keys.append(rec.partition_key)
        inner = _field(1, _VARINT, keys.index(rec.partition_key))
        if rec.explicit_hash_key is not None:
            if rec.explicit_hash_key not in hash_keys:
                hash_keys.append(rec.explicit_hash_key)
            inner += _field(2, _VARINT, hash_keys.index(rec.explicit_hash_key))
        inner += _field(3, _LEN, rec.data)
        body += _field(3, _LEN, inner)
    head = b"".join(_field(1, _LEN, k.encode()) for k in keys)
    head += b"".join(_field(2, _LEN, k.encode()) for k in hash_keys)
    message = head + bytes(body)
    return MAGIC + message + hashlib.md5(message).digest()


def is_aggregated(blob: bytes) -> bool:
    """True when ``blob`` has the KPL magic, a body and a matching MD5 trailer."""
    if len(blob) <= len(MAGIC) + _DIGEST_LEN or not blob.startswith(MAGIC):
        return False
    message = blob[len(MAGIC) : -_DIGEST_LEN]
    return hashlib.md5(message).digest() == blob[-_DIGEST_LEN:]


def _decode_record(buf: bytes, keys: list[str], hash_keys: list[str]) -> SubRecord:
    pk_index: int | None = None
    ehk_index: int | None = None
    data: bytes | None = None
    for number, value in _fields(buf):
        if number == 1 and isinstance(value, int):
            pk_index = value
        elif number == 2 and isinstance(value, int):
            ehk_index = value
        elif number == 3 and isinstance(value, bytes):
            data = value
    if pk_index is None or data is None or pk_index >= len(keys):
        raise KplDecodeError("sub-record lacks partition key index or data")
    ehk = hash_keys[ehk_index] if ehk_index is not None and ehk_index < len(hash_keys) else None
    return SubRecord(keys[pk_index], data, ehk)


def decode(blob: bytes) -> list[SubRecord] | None:
    """Sub-records of an aggregated record, or None when ``blob`` is not aggregated.

    Raises:
        KplDecodeError: the magic and MD5 match but the protobuf body is malformed.
    """
    if not is_aggregated(blob):
        return None
    fields = _fields(blob[len(MAGIC) : -_DIGEST_LEN])
    keys = [v.decode() for n, v in fields if n == 1 and isinstance(v, bytes)]
    hash_keys = [v.decode() for n, v in fields if n == 2 and isinstance(v, bytes)]
    return [
        _decode_record(v, keys, hash_keys) for n, v in fields if n == 3 and isinstance(v, bytes)
    ]


def sub_sequence_number(sequence_number: str, sub_index: int) -> str:
    """The ``sequence_number`` column value of a KPL sub-record: ``<seq>:<index>``.

    The index is zero-padded to 6 digits so that, within one Kinesis record, the strings sort
    like the sub-records; plain (non-aggregated) records keep the bare sequence number.
    """
    return f"{sequence_number}:{sub_index:06d}"
