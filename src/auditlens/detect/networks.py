"""Network grouping of IP addresses: one guesser spread over several addresses of one
network is one source.

IPv4 addresses are grouped by a /24 and IPv6 by a /64 by default (what one host,
home router or small cloud allocation usually holds). Each distinct address is
converted once with :mod:`ipaddress`; rows get the result by one dictionary replace.

Example:
    >>> network_of("203.0.113.77")
    '203.0.113.0/24'
    >>> network_of("2001:db8:1:2:3:4:5:6")
    '2001:db8:1:2::/64'
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import partial

import polars as pl

from auditlens.errors import FilterError

__all__ = ["check_prefix", "network_expr", "network_of"]


def check_prefix(prefix: Sequence[int] | int) -> tuple[int, int]:
    """``(ipv4 bits, ipv6 bits)`` from ``(24, 64)`` or one IPv4 number, validated."""
    pair = (prefix, 64) if isinstance(prefix, int) else tuple(prefix)
    if (
        len(pair) != 2
        or not all(isinstance(p, int) and not isinstance(p, bool) for p in pair)
        or not 0 < pair[0] <= 32
        or not 0 < pair[1] <= 128
    ):
        raise FilterError(
            f"network_prefix must be (IPv4 bits 1-32, IPv6 bits 1-128) like (24, 64), "
            f"got {prefix!r}"
        )
    return int(pair[0]), int(pair[1])


def network_of(ip: str | None, prefix: Sequence[int] | int = (24, 64)) -> str | None:
    """The network (CIDR text) holding ``ip``; text that is not an address is kept as is.

    Example:
        >>> network_of("10.1.2.3", (16, 48))
        '10.1.0.0/16'
        >>> network_of("not-an-ip")
        'not-an-ip'
    """
    if ip is None:
        return None
    v4, v6 = check_prefix(prefix)
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = v4 if addr.version == 4 else v6
    return str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))


def network_expr(col: str = "ip_address", prefix: Sequence[int] | int = (24, 64)) -> pl.Expr:
    """:func:`network_of` for every row of ``col``, each distinct address converted once.

    Example:
        >>> df = pl.DataFrame({"ip_address": ["198.51.100.7", "198.51.100.9", None]})
        >>> df.select(network_expr())["ip_address"].to_list()
        ['198.51.100.0/24', '198.51.100.0/24', None]
    """
    bits = check_prefix(prefix)
    return pl.col(col).map_batches(partial(_networks, prefix=bits), return_dtype=pl.Utf8)


def _networks(ips: pl.Series, prefix: tuple[int, int]) -> pl.Series:
    values = ips.cast(pl.Utf8)
    mapping = {ip: network_of(ip, prefix) for ip in values.drop_nulls().unique().to_list()}
    return values.replace_strict(mapping, default=None, return_dtype=pl.Utf8)
