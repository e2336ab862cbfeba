"""IP addresses as Spark columns: canonical text and a join key, with built-ins only.

The join key (``ip_key``) is the 128-bit address as 32 lowercase hex digits; IPv4 addresses
are IPv4-mapped (``::ffff:a.b.c.d``), so one key space serves both families. Equal addresses
have equal keys whatever their text (``2001:DB8::1`` = ``2001:db8:0:0:0:0:0:1``), and the
``n``-bit prefix of an address is a prefix of its key, so CIDR matching is an equality join on
:func:`ip_prefix_key` per distinct prefix length. Prefix lengths are counted on the 128-bit
key: an IPv4 ``/24`` is ``/120`` here (see :func:`cidr_key_py`).

The ``*_py`` twins compute the same values in Python (``ipaddress``) for the control plane
(inventory refresh, CIDR tables) and for tests.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable

from pyspark.sql import Column
from pyspark.sql import functions as F

IPV4_MAPPED_PREFIX = "00000000000000000000ffff"
IPV4_PREFIX_BITS = 96
_OCTET_SHAPE = r"(0|[1-9][0-9]{0,2})"
_IPV4_SHAPE_RE = rf"^{_OCTET_SHAPE}(\.{_OCTET_SHAPE}){{3}}$"
_H = "[0-9a-f]{1,4}"
# RFC 4291 text forms without zone ids or an embedded IPv4 tail; '::' stands for >= 1 group.
_IPV6_RE = (
    "^("
    + "|".join(
        [
            rf"({_H}:){{7}}{_H}",
            rf"({_H}:){{1,7}}:",
            rf"({_H}:){{1,6}}:{_H}",
            rf"({_H}:){{1,5}}(:{_H}){{1,2}}",
            rf"({_H}:){{1,4}}(:{_H}){{1,3}}",
            rf"({_H}:){{1,3}}(:{_H}){{1,4}}",
            rf"({_H}:){{1,2}}(:{_H}){{1,5}}",
            rf"{_H}:(:{_H}){{1,6}}",
            rf":((:{_H}){{1,7}}|:)",
        ]
    )
    + ")$"
)


def _bound(value: Column, use: Callable[[Column], Column]) -> Column:
    """``use(value)`` with ``value`` computed once, through a one-element transform: a value
    referenced several times is otherwise repeated in the expression tree (and inside a CASE
    branch evaluated at each reference, or hoisted out of the branch for every row)."""
    return F.transform(F.array(value), use).getItem(0)


def _ipv4_key(text: Column) -> Column:
    """Dotted quad -> key, or null. One cheap regex for the shape (no leading zeros), then
    the octets by ``split`` + cast: a regex per octet made this the parser's hot spot."""
    octets = [F.split(text, r"\.").getItem(i).try_cast("long") for i in range(4)]
    in_range = functools.reduce(lambda a, b: a & b, [o <= 255 for o in octets])
    value = (octets[0] * 16777216) + (octets[1] * 65536) + (octets[2] * 256) + octets[3]
    key = F.concat(F.lit(IPV4_MAPPED_PREFIX), F.lpad(F.lower(F.hex(value)), 8, "0"))
    return F.when(text.rlike(_IPV4_SHAPE_RE) & in_range, key)


def _ipv6_key(text: Column) -> Column:
    """IPv6 text (lower case) -> key, or null. One regex validates; '::' is expanded by
    string replacement and the eight groups padded (no regex per group). :func:`to_ip_key`
    runs it inside a one-element transform, only for text with a ':'."""
    missing = F.lit(8) - F.regexp_count(text, F.lit("[0-9a-f]+"))
    zeros = F.concat(F.lit(":"), F.repeat(F.lit("0:"), missing))
    expanded = F.btrim(F.replace(text, F.lit("::"), zeros), F.lit(":"))
    # the groups are bound once, not split again for each of 8
    key = _bound(
        F.split(expanded, ":"),
        lambda groups: F.concat(*(F.lpad(groups.getItem(i), 4, "0") for i in range(8))),
    )
    return F.when(text.rlike(_IPV6_RE), key)


def to_ip_key(col: Column) -> Column:
    """Address text -> 32-hex-digit key; null for null, '-', or anything not an address."""
    trimmed = F.trim(col)
    text = F.lower(trimmed)
    # IPv6 is bound through a one-element transform (_bound): inline, subexpression elimination
    # hoists its subexpressions out of the branch, and every IPv4 row would pay for them too.
    v6 = _bound(text, _ipv6_key)
    # IPv4 goes first, unconditionally (null unless a dotted quad): the first argument of a
    # coalesce is always evaluated, so subexpression elimination computes the trimmed text
    # and its split once; inside a CASE branch each of the 8 octet references would split it
    # again. No dotted quad contains ':', so the order is free.
    return F.coalesce(_ipv4_key(trimmed), F.when(F.instr(text, ":") > 0, v6))


def _ipv4_text(key: Column) -> Column:
    octets = [F.conv(F.substring(key, 25 + 2 * i, 2), 16, 10) for i in range(4)]
    return F.concat_ws(".", *octets)


def _compress_zero_run(framed: Column) -> Column:
    """':g1:...:g8:' -> RFC 5952 text: the longest run (>= 2) of zero groups becomes '::',
    the first one on a tie. Plain substring search, longest run first; then one regex drops
    the framing colons that are not part of a '::'. Each value is referenced once, so the
    expression stays small: analysing and planning it is paid on every micro-batch, and a
    form that nested the compressed text in each candidate would grow with every run length."""
    compressed = framed
    for run in range(2, 9):
        zeros = ":" + "0:" * run
        at = F.instr(framed, zeros)
        head = F.substring(framed, F.lit(1), at - 1)
        cut = F.concat(head, F.lit("::"), F.substring(framed, at + len(zeros), 64))
        compressed = F.when(at > 0, cut).otherwise(compressed)
    return F.regexp_replace(compressed, F.lit("^:(?!:)|(?<!:):$"), F.lit(""))


def _ipv6_text(key: Column) -> Column:
    groups = [F.lower(F.conv(F.substring(key, i * 4 + 1, 4), 16, 16)) for i in range(8)]
    framed = F.concat(F.lit(":"), F.concat_ws(":", *groups), F.lit(":"))
    # A one-element transform binds ``framed`` to a variable: written inline, each of the
    # compression's references would repeat it and the generated code outgrows 64 KB.
    return _bound(framed, _compress_zero_run)


def to_canonical_ip(key: Column) -> Column:
    """ip_key -> canonical text: dotted quad for IPv4(-mapped), RFC 5952 for IPv6."""
    return (
        F.when(key.isNull(), F.lit(None).cast("string"))
        .when(key.startswith(IPV4_MAPPED_PREFIX), _ipv4_text(key))
        .otherwise(_ipv6_text(key))
    )


def is_ipv4_key(key: Column) -> Column:
    """True when the key is an IPv4(-mapped) address."""
    return key.startswith(IPV4_MAPPED_PREFIX)


def ip_prefix_key(key: Column, prefix_len: int) -> Column:
    """The key of the ``prefix_len``-bit (128-bit space) network that contains ``key``.

    Whole hex digits are kept; a partial last digit is masked. Matches :func:`cidr_key_py`.
    """
    if not 0 <= prefix_len <= 128:
        raise ValueError(f"prefix_len must be in 0..128, got {prefix_len}")
    whole, rem = divmod(prefix_len, 4)
    head = F.substring(key, 1, whole) if whole else F.lit("")
    if rem == 0:
        return F.when(key.isNotNull(), head)
    mask = (0xF << (4 - rem)) & 0xF
    digit = F.conv(F.substring(key, whole + 1, 1), 16, 10).cast("int").bitwiseAND(mask)
    return F.when(key.isNotNull(), F.concat(head, F.lower(F.hex(digit))))


# ---- Python twins (control plane and tests) -------------------------------------------------


def ip_key_py(text: str | None) -> str | None:
    """Python twin of :func:`to_ip_key`."""
    if text is None:
        return None
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv4Address):
        addr = ipaddress.IPv6Address(f"::ffff:{addr}")
    return f"{int(addr):032x}"


def canonical_ip_py(text: str | None) -> str | None:
    """Python twin of ``to_canonical_ip(to_ip_key(text))``."""
    key = ip_key_py(text)
    if key is None:
        return None
    addr = ipaddress.IPv6Address(int(key, 16))
    return str(addr.ipv4_mapped) if addr.ipv4_mapped is not None else str(addr)


def cidr_key_py(cidr: str) -> tuple[int, str]:
    """``'10.0.0.0/8'`` -> (prefix length in the 128-bit space, prefix key)."""
    net = ipaddress.ip_network(cidr.strip(), strict=False)
    if isinstance(net, ipaddress.IPv4Network):
        bits = IPV4_PREFIX_BITS + net.prefixlen
        value = (0xFFFF << 32) | int(net.network_address)
    else:
        bits = net.prefixlen
        value = int(net.network_address)
    full = f"{value:032x}"
    whole, rem = divmod(bits, 4)
    if rem == 0:
        return bits, full[:whole]
    mask = (0xF << (4 - rem)) & 0xF
    return bits, full[:whole] + f"{int(full[whole], 16) & mask:x}"
