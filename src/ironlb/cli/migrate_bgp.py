"""`ironlb migrate metallb`, BGP mode: MetalLB's BGPPeer (v1beta1, v1beta2), BFDProfile and BGPAdvertisement specs
-> IronLB's. Each function returns the new spec and a note for everything not carried as it was.

IronLB has no Community kind: a BGPAdvertisement's community that names a MetalLB Community alias is replaced
by the alias's value (from the Community objects migrated with it), so the result holds values only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ironlb.api.bgp import InvalidSpec, duration_seconds, parse_community
from ironlb.api.constants import BGP_PASSWORD_SECRET_KEY, BGP_PASSWORD_SECRET_TYPE

PEER_FIELDS = ("myASN", "peerASN", "dynamicASN", "peerAddress", "interface", "peerPort", "sourceAddress", "routerID",
               "holdTime", "keepaliveTime", "connectTime", "password", "passwordSecret", "ebgpMultiHop", "bfdProfile",
               "enableGracefulRestart", "nodeSelectors", "vrf", "disableMP")
DURATION_FIELDS = ("holdTime", "keepaliveTime", "connectTime")
BFD_FIELDS = ("receiveInterval", "transmitInterval", "detectMultiplier", "echoInterval", "echoMode", "passiveMode",
              "minimumTtl")
ADVERTISEMENT_FIELDS = ("aggregationLength", "aggregationLengthV6", "localPref", "communities", "ipAddressPools",
                        "ipAddressPoolSelectors", "nodeSelectors", "peers", "serviceSelectors")
# MetalLB's zero values that mean "not set" (its Go fields are omitempty): left out rather than carried.
UNSET = {"peerASN": 0, "peerPort": 0, "localPref": 0}
# MetalLB 0.15 and later: a session carries only its own address family unless this says both (their CRD stores it on
# every peer, false by default), and disableMP has no effect; IronLB's disableMP says the same the other way round.
DUAL_STACK = "dualStackAddressFamily"

Converted = tuple[dict[str, Any], list[str]]


def _carried(spec: Mapping[str, Any], fields: Iterable[str], where: str) -> Converted:
    """The known fields of SPEC that are set, and a note for each field IronLB does not have."""
    fields = tuple(fields)
    notes = [f"{where}: spec.{key} is not carried: IronLB has no such field" for key in sorted(set(spec) - set(fields))]
    new = {k: spec[k] for k in fields if k in spec and spec[k] not in ("", None) and UNSET.get(k, object()) != spec[k]}
    return new, notes


def _address_families(spec: Mapping[str, Any], new: dict[str, Any]) -> None:
    """disableMP as MetalLB 0.15 and later mean it when SPEC has DUAL_STACK: set unless DUAL_STACK is true, and left
    out for an unnumbered session (both families in MetalLB and IronLB). Without DUAL_STACK (MetalLB before 0.15),
    disableMP is carried as it is: a session carried both families unless it was set, as in IronLB."""
    new.pop(DUAL_STACK, None)
    if DUAL_STACK not in spec:
        return
    if new.get("interface"):
        new.pop("disableMP", None)
    else:
        new["disableMP"] = spec[DUAL_STACK] is not True


def peer(spec: Mapping[str, Any], where: str) -> Converted:
    """A MetalLB BGPPeer's spec (v1beta1 or v1beta2: the same names)."""
    new, notes = _carried(spec, (*PEER_FIELDS, DUAL_STACK), where)
    _address_families(spec, new)
    for key in DURATION_FIELDS:
        if key in new:
            try:
                duration_seconds(str(new[key]))
            except InvalidSpec as exc:
                notes.append(f"{where}: spec.{key} is not carried: {exc} (IronLB's timers are whole seconds)")
                del new[key]
    ref = new.get("passwordSecret")
    if isinstance(ref, Mapping):
        if not ref.get("name"):
            del new["passwordSecret"]
        else:
            new["passwordSecret"] = {"name": ref["name"]}
            source = f"{ref['namespace']}/{ref['name']}" if ref.get("namespace") else ref["name"]
            notes.append(f"{where}: its password Secret {source} is read from IronLB's namespace: copy it there "
                         f"(type {BGP_PASSWORD_SECRET_TYPE}, key '{BGP_PASSWORD_SECRET_KEY}')")
    return new, notes


def bfd_profile(spec: Mapping[str, Any], where: str) -> Converted:
    """A MetalLB BFDProfile's spec: the same fields and ranges."""
    return _carried(spec, BFD_FIELDS, where)


def community_aliases(objects: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Alias name -> community value, from MetalLB's Community objects."""
    aliases: dict[str, str] = {}
    for obj in objects:
        for alias in (obj.get("spec") or {}).get("communities") or []:
            if isinstance(alias, Mapping) and alias.get("name") and alias.get("value"):
                aliases[str(alias["name"])] = str(alias["value"])
    return aliases


def advertisement(spec: Mapping[str, Any], where: str, aliases: Mapping[str, str]) -> Converted:
    """A MetalLB BGPAdvertisement's spec, its Community aliases replaced by their values."""
    new, notes = _carried(spec, ADVERTISEMENT_FIELDS, where)
    if "communities" not in new:
        return new, notes
    values = []
    for community in new["communities"]:
        value = aliases.get(str(community), str(community))
        try:
            parse_community(value)
        except InvalidSpec:
            notes.append(f"{where}: community '{community}' is not carried: it is neither a community value nor an "
                         "alias of the Community objects migrated with it")
            continue
        if value not in values:
            values.append(value)
    new["communities"] = values
    if not values:
        del new["communities"]
    return new, notes
