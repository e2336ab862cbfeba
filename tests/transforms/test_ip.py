"""IP key and canonical text: Spark built-ins agree with Python's ipaddress."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from spark_jobs.transforms.ip import (
    canonical_ip_py,
    cidr_key_py,
    ip_key_py,
    ip_prefix_key,
    to_canonical_ip,
    to_ip_key,
)

CASES = [
    # text, expected key, expected canonical text
    ("192.0.2.1", "00000000000000000000ffffc0000201", "192.0.2.1"),
    (" 203.0.113.255 ", "00000000000000000000ffffcb0071ff", "203.0.113.255"),
    ("0.0.0.0", "00000000000000000000ffff00000000", "0.0.0.0"),
    ("2001:db8::1", "20010db8000000000000000000000001", "2001:db8::1"),
    ("2001:DB8:0:0:0:0:0:1", "20010db8000000000000000000000001", "2001:db8::1"),
    ("::", "00000000000000000000000000000000", "::"),
    ("::1", "00000000000000000000000000000001", "::1"),
    ("2001:db8::", "20010db8000000000000000000000000", "2001:db8::"),
    ("2001:db8:0:1:0:0:0:1", "20010db8000000010000000000000001", "2001:db8:0:1::1"),
    ("2001:0:0:1:0:0:1:1", "20010000000000010000000000010001", "2001::1:0:0:1:1"),
    ("fe80:1:2:3:4:5:6:7", "fe800001000200030004000500060007", "fe80:1:2:3:4:5:6:7"),
    ("-", None, None),
    (None, None, None),
    ("", None, None),
    ("256.1.1.1", None, None),
    ("1.2.3", None, None),
    ("01.2.3.4", None, None),
    ("2001:db8::1::2", None, None),
    ("2001:db8:1:2:3:4:5:6:7", None, None),
    ("12345::", None, None),
    ("g::1", None, None),
    ("1:2:3:4:5:6:7::8", None, None),
    ("not-an-ip", None, None),
    ("1.2.3.4:80", None, None),  # an address with a port is not an address
    ("1.2.3.4\n", "00000000000000000000ffff01020304", "1.2.3.4"),  # trim takes the newline
    ("::1 ", "00000000000000000000000000000001", "::1"),
]


def test_ip_key_and_canonical_text_match_expected(spark):
    df = spark.createDataFrame([(c[0],) for c in CASES], "ip string")
    out = df.select(to_ip_key(F.col("ip")).alias("k")).select(
        "k", to_canonical_ip(F.col("k")).alias("t")
    )
    got = [(r.k, r.t) for r in out.collect()]
    assert got == [(c[1], c[2]) for c in CASES]


@pytest.mark.parametrize(("text", "key", "canon"), CASES)
def test_python_twins_agree(text, key, canon):
    # ipaddress accepts leading zeros nowhere either; both sides must reject the same inputs
    assert ip_key_py(text) == key
    assert canonical_ip_py(text) == canon


@pytest.mark.parametrize(
    ("cidr", "ip", "inside"),
    [
        ("10.0.0.0/8", "10.255.1.2", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("192.0.2.0/25", "192.0.2.127", True),
        ("192.0.2.0/25", "192.0.2.128", False),
        ("198.51.100.0/22", "198.51.103.9", True),
        ("198.51.100.0/22", "198.51.104.9", False),
        ("2001:db8::/32", "2001:db8:ffff::1", True),
        ("2001:db8::/33", "2001:db8:8000::1", False),
        ("0.0.0.0/0", "203.0.113.7", True),
    ],
)
def test_prefix_key_matches_cidr_key(spark, cidr, ip, inside):
    bits, key = cidr_key_py(cidr)
    row = (
        spark.createDataFrame([(ip,)], "ip string")
        .select(ip_prefix_key(to_ip_key(F.col("ip")), bits).alias("p"))
        .first()
    )
    assert (row.p == key) is inside


def test_prefix_len_out_of_range_is_rejected():
    with pytest.raises(ValueError):
        ip_prefix_key(F.col("x"), 129)


def _random_ipv6_texts(n: int, seed: int = 7) -> list[str]:
    """Addresses rich in zero runs, written compressed, exploded, upper-case and padded."""
    import ipaddress
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(n):
        groups = [rng.choice([0, 0, 0, 1, 0xDB8, rng.randrange(0x10000)]) for _ in range(8)]
        addr = ipaddress.IPv6Address(b"".join(g.to_bytes(2, "big") for g in groups))
        style = rng.randrange(4)
        if style == 0:
            out.append(str(addr))
        elif style == 1:
            out.append(addr.exploded)
        elif style == 2:
            out.append(":".join(f"{g:x}" for g in groups))
        else:
            out.append(str(addr).upper())
    return out


def test_ipv6_key_and_text_agree_with_ipaddress_on_many_addresses(spark):
    texts = _random_ipv6_texts(400)
    bad = ["1:2:3:4:5:6:7:8:9", ":1:2::", "1::2::3", "12345::1", "1:2", ":::", "1:2:3:4:5:6:7"]
    df = spark.createDataFrame([(t,) for t in texts + bad], "ip string")
    out = df.select("ip", to_ip_key(F.col("ip")).alias("k")).select(
        "ip", "k", to_canonical_ip(F.col("k")).alias("t")
    )
    got = {r.ip: (r.k, r.t) for r in out.collect()}
    assert got == {t: (ip_key_py(t), canonical_ip_py(t)) for t in texts + bad}
    assert all(got[b] == (None, None) for b in bad)
    # Embedded-IPv4 text is not a flow-log form: rejected (documented), unlike ipaddress.
    mapped = df.sparkSession.createDataFrame([("::ffff:1.2.3.4",)], "ip string")
    assert mapped.select(to_ip_key(F.col("ip"))).first()[0] is None
