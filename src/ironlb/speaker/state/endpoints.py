"""A slice's ready endpoints as steering reads them: each endpoint's node and address, and the slice's ports.

Held for every slice, so compact: the nodes are interned names and the addresses one packed byte string.
Kubernetes remains the judge of readiness; steering only leaves out endpoints on nodes known to be dead.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ironlb.core.addresses import packed_ip

_WIDTH = {"IPv4": 4, "IPv6": 16}  # FQDN slices carry no address steering could use
# The same few port lists on thousands of slices: one copy of each (bounded, as slim.py's shared parts).
_PORTS: dict[tuple[tuple[str, str, int], ...], tuple[tuple[str, str, int], ...]] = {}
PORTS_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class SliceTargets:
    """A slice's ports (name, protocol, port) and its ready endpoints' nodes and addresses."""

    ports: tuple[tuple[str, str, int], ...]
    nodes: tuple[str, ...]
    packed: bytes  # the endpoints' addresses in the nodes' order, 4 or 16 bytes each

    def endpoints(self) -> Iterator[tuple[str, str]]:
        """(node, address) of each ready endpoint."""
        width = len(self.packed) // len(self.nodes) if self.nodes else 0
        for i, node in enumerate(self.nodes):
            yield node, str(ipaddress.ip_address(self.packed[i * width:(i + 1) * width]))

    def port(self, name: str, protocol: str) -> int | None:
        """The endpoints' port serving the Service port named NAME (None: no such port in this slice)."""
        return next((port for n, p, port in self.ports if n == name and p == protocol), None)


def slice_targets(obj: Mapping[str, Any]) -> SliceTargets | None:
    """What steering reads of a slim EndpointSlice (None: no usable address type, or no ready endpoint)."""
    width = _WIDTH.get(obj.get("addressType"))  # type: ignore[arg-type]
    if width is None:
        return None
    nodes: list[str] = []
    packed = bytearray()
    for ep, address in zip(obj.get("endpoints") or [], obj.get("addresses") or [], strict=False):
        raw = _packed(address, width)
        if raw is not None and (ep.get("conditions") or {}).get("ready", True):
            nodes.append(ep["nodeName"])
            packed += raw
    if not nodes:
        return None
    ports = tuple((p.get("name") or "", p.get("protocol") or "TCP", p["port"]) for p in obj.get("ports") or []
                  if isinstance(p.get("port"), int) and not isinstance(p.get("port"), bool))
    return SliceTargets(_shared(ports), tuple(nodes), bytes(packed))


def _shared(ports: tuple[tuple[str, str, int], ...]) -> tuple[tuple[str, str, int], ...]:
    found = _PORTS.get(ports)
    if found is None:
        if len(_PORTS) >= PORTS_LIMIT:
            _PORTS.clear()
        found = _PORTS[ports] = ports
    return found


def _packed(address: object, width: int) -> bytes | None:
    if not isinstance(address, str):
        return None
    try:
        raw = packed_ip(address)
    except ValueError:
        return None
    return raw if len(raw) == width else None


def service_ports(raw: Mapping[str, Any]) -> tuple[tuple[str, str, int], ...]:
    """A slim Service's ports as (name, protocol, port)."""
    out = []
    for p in (raw.get("spec") or {}).get("ports") or []:
        port = p.get("port")
        if isinstance(port, int) and not isinstance(port, bool):
            out.append((p.get("name") or "", p.get("protocol") or "TCP", port))
    return tuple(out)
