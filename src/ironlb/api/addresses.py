"""The schema of one `IPAddressPool.spec.addresses` entry and the CEL rules that check it.

Accepted forms (no whitespace anywhere):

* a CIDR with no host bits set: ``192.0.2.0/24``, ``2001:db8::/64``;
* a single address: ``192.0.2.7``, ``2001:db8::7`` (the same as /32 or /128);
* a range of two addresses of the same family joined by one ``-``, first <= last:
  ``192.0.2.10-192.0.2.20``, ``2001:db8::10-2001:db8::ff``.

Addresses are parsed as Kubernetes does (Go's net/netip): IPv4 octets without leading zeros, no
IPv4-mapped IPv6 (``::ffff:192.0.2.1``), no zones (``fe80::1%eth0``). Loopback, link-local,
multicast, unspecified and broadcast addresses are refused: they can never be LoadBalancer IPs.

How the ordering of a range is checked without an IP comparison operator (the Kubernetes CEL IP
library has only equality): for ``A-B`` with A != B, let n be the length of their common prefix,
i.e. the largest n for which ``cidr(A/n)`` contains B. Then A < B exactly when bit n of A is 0,
which is when masking A to n+1 bits gives the same address as masking it to n bits. The rule walks
a literal map {"0": "1", "1": "2", ...} of prefix lengths n -> n+1 (a literal, so the API server's
cost estimator knows the size of every string it builds) and asks whether some n fits both
conditions. It costs at most 128 steps per entry, which the CRD's limits (maxItems, maxLength)
keep well under the API server's budget.
"""

from __future__ import annotations

from ironlb.api.schema import Schema, cel_string, rule

# The longest valid entry is an IPv6 range with both ends written in full (up to 45 characters
# each with an embedded IPv4 suffix) and a "-".
ADDRESS_MAX_LENGTH = 100
# With MAX_ADDRESSES entries of ADDRESS_MAX_LENGTH characters, the range-order rule's estimated cost stays
# within the API server's per-rule limit, and a real worst case (reversed IPv6 ranges) is rejected quickly
# (docs/design.md, "Measurements behind the code").
MAX_ADDRESSES = 64

EXAMPLES = "a CIDR (192.0.2.0/24, 2001:db8::/64), a range (192.0.2.10-192.0.2.20) or a single IP address"

# CEL fragments. `self` is the entry (a string).
_FIRST = "self.substring(0, self.indexOf('-'))"
_LAST = "self.substring(self.indexOf('-') + 1)"
_CIDR_ADDR = "self.substring(0, self.indexOf('/'))"
_IS_RANGE = "(!self.contains('/') && self.contains('-'))"
_WELL_FORMED = (
    "(self.contains('/') ? isCIDR(self)\n"
    f"  : self.contains('-') ? isIP({_FIRST}) && isIP({_LAST})\n"
    "  : isIP(self))"
)
_WELL_FORMED_RANGE = f"({_IS_RANGE} && isIP({_FIRST}) && isIP({_LAST}))"


def _successor_map(bits: int) -> str:
    """CEL map literal {'0': '1', '1': '2', ..., 'bits-1': 'bits'}, wrapped for readability."""
    pairs = [f"'{n}': '{n + 1}'" for n in range(bits)]
    lines = [", ".join(pairs[i:i + 12]) for i in range(0, len(pairs), 12)]
    return "{" + ",\n     ".join(lines) + "}"


def _less_than(bits: int) -> str:
    """CEL: a < b for two distinct addresses a, b of the family with `bits` bits (see module doc)."""
    return (
        f"{_successor_map(bits)}.exists(n, m,\n"
        "     cidr(a + '/' + n).containsIP(b) && !cidr(a + '/' + m).containsIP(b)\n"
        "     && cidr(a + '/' + m).masked().ip() == cidr(a + '/' + n).masked().ip())"
    )


_V = {"v": "self", "first": _FIRST, "last": _LAST, "addr": _CIDR_ADDR}


def _msg(template: str) -> str:
    return cel_string(template, **_V)


SYNTAX_MESSAGE = (
    "size(self) == 0 ? " + _msg(f"an address entry must not be empty: write {EXAMPLES}") + "\n"
    ": self.matches('[[:space:]]') ? " + _msg("'{v}' must not contain spaces") + "\n"
    f": self.contains('/') ? (isIP({_CIDR_ADDR})\n"
    "    ? " + _msg("'{v}' has an invalid prefix length: after the / write a number from 0 to ")
    + f" + (ip({_CIDR_ADDR}).family() == 4 ? '32 for IPv4' : '128 for IPv6')\n"
    "    : " + _msg("'{v}' is not a valid CIDR: '{addr}' is not an IPv4 or IPv6 address") + ")\n"
    ": self.contains('-') ? (self.indexOf('-') != self.lastIndexOf('-')\n"
    "    ? " + _msg("'{v}' is not a valid range: write exactly one '-' between the first and the last "
                   "address") + "\n"
    f"    : !isIP({_FIRST})\n"
    "    ? " + _msg("'{v}' is not a valid range: '{first}' is not an IPv4 or IPv6 address") + "\n"
    "    : " + _msg("'{v}' is not a valid range: '{last}' is not an IPv4 or IPv6 address") + ")\n"
    ": " + _msg(f"'{{v}}' is not a valid IP address, CIDR or range: write {EXAMPLES}")
)

ADDRESS_RULES: list[Schema] = [
    rule(
        _WELL_FORMED,
        f"not a valid address entry: write {EXAMPLES}",
        SYNTAX_MESSAGE,
    ),
    rule(
        "!isCIDR(self) || cidr(self) == cidr(self).masked()",
        "CIDR has host bits set: the address before the / must be the first address of the network",
        _msg("'{v}' has host bits set: the address before the / must be the first address of the network "
             "(e.g. 192.0.2.0/24, not 192.0.2.5/24; 2001:db8::/64, not 2001:db8::1/64)"),
    ),
    rule(
        f"!{_WELL_FORMED}\n"
        "|| (self.contains('/') ? cidr(self).masked().ip().isGlobalUnicast()\n"
        f"    : self.contains('-') ? ip({_FIRST}).isGlobalUnicast() && ip({_LAST}).isGlobalUnicast()\n"
        "    : ip(self).isGlobalUnicast())",
        "loopback, link-local, multicast, unspecified and broadcast addresses cannot be LoadBalancer IPs",
        _msg("'{v}' cannot hold LoadBalancer IPs: loopback, link-local, multicast, unspecified (0.0.0.0, ::) "
             "and broadcast addresses are not allowed"),
    ),
    rule(
        f"!{_WELL_FORMED_RANGE}\n|| ip({_FIRST}).family() == ip({_LAST}).family()",
        "a range must not mix IPv4 and IPv6: both ends must be of the same family",
        _msg("'{v}' mixes IPv4 and IPv6: both ends of a range must be of the same family (list IPv4 and IPv6 "
             "addresses as separate entries)"),
    ),
    rule(
        f"!{_WELL_FORMED_RANGE}\n|| ip({_FIRST}).family() != ip({_LAST}).family()\n"
        f"|| [{_FIRST}].all(a, [{_LAST}].all(b,\n"
        "  ip(a) == ip(b) || (ip(a).family() == 4\n"
        f"    ? {_less_than(32)}\n"
        f"    : {_less_than(128)})))",
        "a range is reversed: its first address must not be greater than its last",
        _msg("'{v}' is reversed: its first address is greater than its last; did you mean '{last}-{first}'?"),
    ),
]


def address_entry() -> Schema:
    return {
        "type": "string",
        "description": f"An address block: {EXAMPLES}. IPv4 and IPv6 entries may be mixed in one pool.",
        "maxLength": ADDRESS_MAX_LENGTH,
        "x-kubernetes-validations": ADDRESS_RULES,
    }


def addresses() -> Schema:
    return {
        "type": "array",
        "description": (
            f"The addresses the pool hands out, one block per entry: {EXAMPLES}. At least one, at most "
            f"{MAX_ADDRESSES}; duplicates are refused. Overlaps between entries or with other pools are "
            "reported by the operator as the Overlapping condition."
        ),
        "minItems": 1,
        "maxItems": MAX_ADDRESSES,
        "items": address_entry(),
        "x-kubernetes-list-type": "set",
    }
