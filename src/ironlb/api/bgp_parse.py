"""Reading BGPPeer, BFDProfile and BGPAdvertisement objects together into an ironlb.api.bgp.BGPConfig.

`parse_config` is the one entry point: the objects as the API server returns them, the Secrets of IronLB's
namespace and the IPAddressPools, by name. What it leaves out or changes, and why, is in ironlb.api.bgp's
docstring; each case is a Problem in the result.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from ironlb.api.bgp import (
    MAX_ASN,
    BFDProfileConfig,
    BGPAdvertisementConfig,
    BGPConfig,
    BGPPeerConfig,
    DynamicASN,
    InvalidSpec,
    Problem,
    Selectors,
    duration_seconds,
    parse_community,
)
from ironlb.api.constants import (
    BFDPROFILE_KIND,
    BGP_DEFAULT_PORT,
    BGP_PASSWORD_SECRET_KEY,
    BGP_PASSWORD_SECRET_TYPE,
    BGPADVERTISEMENT_KIND,
    BGPPEER_KIND,
)
from ironlb.api.reasons import BGPConfigReason
from ironlb.core.addresses import IPV4, parse_spec

MAX_TIMER_S = 65535  # BGP's timers are 16-bit counts of seconds (RFC 4271)


def _int(spec: Mapping[str, Any], key: str, low: int, high: int) -> int | None:
    value = spec.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidSpec(f"spec.{key} must be a whole number from {low} to {high}, not {value!r}")
    return value


def _str(spec: Mapping[str, Any], key: str) -> str:
    value = spec.get(key, "")
    if not isinstance(value, str):
        raise InvalidSpec(f"spec.{key} must be a string, not {value!r}")
    return value


def _bool(spec: Mapping[str, Any], key: str) -> bool:
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise InvalidSpec(f"spec.{key} must be true or false, not {value!r}")
    return value


def _names(spec: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = spec.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidSpec(f"spec.{key} must be a list of names")
    return tuple(value)


def _selectors(spec: Mapping[str, Any], key: str) -> Selectors:
    value = spec.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise InvalidSpec(f"spec.{key} must be a list of label selectors")
    return tuple(value)


def _ip(spec: Mapping[str, Any], key: str, *, v4_only: bool = False) -> str:
    text = _str(spec, key)
    if not text:
        return ""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise InvalidSpec(f"spec.{key} '{text}' is not an IP address") from None
    if v4_only and address.version != 4:
        raise InvalidSpec(f"spec.{key} '{text}' is not an IPv4 address")
    return text


def _seconds(spec: Mapping[str, Any], key: str) -> int | None:
    text = spec.get(key)
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidSpec(f"spec.{key} must be a duration such as '90s', not {text!r}")
    return duration_seconds(text)


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec")
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise InvalidSpec("spec must be an object")
    return spec


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


# --- one object at a time ---------------------------------------------------------------------------------


def parse_bfd_profile(obj: Mapping[str, Any]) -> BFDProfileConfig:
    """A BFDProfile, FRR's defaults filled in; InvalidSpec when a field is out of MetalLB's ranges."""
    spec, defaults = _spec(obj), BFDProfileConfig(_name(obj))
    return BFDProfileConfig(
        name=defaults.name,
        receive_interval_ms=_int(spec, "receiveInterval", 10, 60000) or defaults.receive_interval_ms,
        transmit_interval_ms=_int(spec, "transmitInterval", 10, 60000) or defaults.transmit_interval_ms,
        detect_multiplier=_int(spec, "detectMultiplier", 2, 255) or defaults.detect_multiplier,
        echo_interval_ms=_int(spec, "echoInterval", 10, 60000) or defaults.echo_interval_ms,
        echo_mode=_bool(spec, "echoMode"), passive_mode=_bool(spec, "passiveMode"),
        minimum_ttl=_int(spec, "minimumTtl", 1, 254) or defaults.minimum_ttl,
    )


def _timers(spec: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(hold, keepalive) in seconds as MetalLB derives them: one given, the other from it (a third, or 3x)."""
    hold, keepalive = _seconds(spec, "holdTime"), _seconds(spec, "keepaliveTime")
    if hold is None and keepalive is not None:
        hold = min(3 * keepalive, MAX_TIMER_S)
    if keepalive is None and hold is not None:
        keepalive = hold // 3
    if hold is not None and keepalive is not None:
        if hold != 0 and not 3 <= hold <= MAX_TIMER_S:
            raise InvalidSpec(f"holdTime must be 0s or 3s to 65535s, not {hold}s")
        if not (keepalive < hold or hold == keepalive == 0):
            raise InvalidSpec(f"keepaliveTime {keepalive}s must be less than holdTime {hold}s")
    return hold, keepalive


def _connect_time(spec: Mapping[str, Any]) -> int | None:
    connect = _seconds(spec, "connectTime")
    if connect is not None and not 1 <= connect <= MAX_TIMER_S:
        raise InvalidSpec(f"connectTime must be 1s to 65535s, not {connect}s")
    return connect


def _peer_fields(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a BGPPeer that need no other object, checked as admission checks them."""
    my_asn, peer_asn = _int(spec, "myASN", 1, MAX_ASN), _int(spec, "peerASN", 1, MAX_ASN)
    dynamic = spec.get("dynamicASN")
    if my_asn is None:
        raise InvalidSpec("spec.myASN is missing")
    if (peer_asn is None) == (dynamic is None):
        raise InvalidSpec("exactly one of peerASN and dynamicASN must be set")
    if dynamic is not None and dynamic not in {d.value for d in DynamicASN}:
        raise InvalidSpec(f"spec.dynamicASN must be internal or external, not {dynamic!r}")
    address, interface = _ip(spec, "peerAddress"), _str(spec, "interface")
    if bool(address) == bool(interface):
        raise InvalidSpec("exactly one of peerAddress and interface must be set")
    hold, keepalive = _timers(spec)
    fields = {
        "my_asn": my_asn, "peer_asn": peer_asn, "dynamic_asn": DynamicASN(dynamic) if dynamic else None,
        "address": address, "interface": interface, "port": _int(spec, "peerPort", 1, 65535) or BGP_DEFAULT_PORT,
        "source_address": _ip(spec, "sourceAddress"), "router_id": _ip(spec, "routerID", v4_only=True),
        "hold_time_s": hold, "keepalive_time_s": keepalive, "connect_time_s": _connect_time(spec),
        "ebgp_multihop": _bool(spec, "ebgpMultiHop"), "graceful_restart": _bool(spec, "enableGracefulRestart"),
        "node_selectors": _selectors(spec, "nodeSelectors"), "vrf": _str(spec, "vrf"),
        "disable_mp": _bool(spec, "disableMP"),
    }
    if fields["ebgp_multihop"] and BGPPeerConfig("", **fields).ibgp:
        raise InvalidSpec("ebgpMultiHop applies to eBGP peers only")
    return fields


def _password(spec: Mapping[str, Any], secrets: Mapping[str, Mapping[str, Any]]) -> str:
    """The peer's password, in the clear or from its Secret; PasswordProblem when the Secret does not give one."""
    if "password" in spec and "passwordSecret" in spec:
        raise InvalidSpec("password and passwordSecret are mutually exclusive")
    ref = spec.get("passwordSecret")
    if ref is None:
        return _str(spec, "password")
    name = ref.get("name") if isinstance(ref, Mapping) else None
    if not isinstance(name, str) or not name:
        raise InvalidSpec("spec.passwordSecret.name is missing")
    secret = secrets.get(name)
    if secret is None:
        raise PasswordProblem(BGPConfigReason.PASSWORD_SECRET_NOT_FOUND, f"Secret {name} does not exist")
    if secret.get("type") != BGP_PASSWORD_SECRET_TYPE:
        raise PasswordProblem(BGPConfigReason.PASSWORD_SECRET_WRONG_TYPE,
                              f"Secret {name} is of type {secret.get('type')!r}, not {BGP_PASSWORD_SECRET_TYPE}")
    try:
        return base64.b64decode((secret.get("data") or {})[BGP_PASSWORD_SECRET_KEY], validate=True).decode()
    except (KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise PasswordProblem(BGPConfigReason.PASSWORD_SECRET_NO_PASSWORD,
                              f"Secret {name} has no '{BGP_PASSWORD_SECRET_KEY}' key holding text") from None


class PasswordProblem(Exception):
    """The passwordSecret does not give a password: REASON, and a message naming the Secret."""

    def __init__(self, reason: BGPConfigReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def parse_advertisement(obj: Mapping[str, Any]) -> BGPAdvertisementConfig:
    """A BGPAdvertisement, MetalLB's defaults filled in; InvalidSpec for what admission refuses."""
    spec = _spec(obj)
    service_selectors = _selectors(spec, "serviceSelectors")
    v4, v6 = _int(spec, "aggregationLength", 1, 32) or 32, _int(spec, "aggregationLengthV6", 1, 128) or 128
    if service_selectors and (v4, v6) != (32, 128):
        raise InvalidSpec("serviceSelectors need aggregationLength 32 and aggregationLengthV6 128")
    communities = spec.get("communities") or []
    if not isinstance(communities, list) or not all(isinstance(c, str) for c in communities):
        raise InvalidSpec("spec.communities must be a list of strings")
    return BGPAdvertisementConfig(
        name=_name(obj), pools=_names(spec, "ipAddressPools"),
        pool_selectors=_selectors(spec, "ipAddressPoolSelectors"),
        service_selectors=service_selectors, node_selectors=_selectors(spec, "nodeSelectors"),
        peers=_names(spec, "peers"), aggregation_length=v4, aggregation_length_v6=v6,
        local_pref=_int(spec, "localPref", 0, MAX_ASN) or None,
        communities=tuple(parse_community(c) for c in communities),
    )


# --- all together -----------------------------------------------------------------------------------------


def _shortest_prefix(entry: str) -> tuple[int, int] | None:
    """(IP version, the shortest prefix length among the CIDRs that make up a pool entry), None if malformed."""
    try:
        block = parse_spec(entry)
    except ValueError:
        return None
    address = ipaddress.IPv4Address if block.family == IPV4 else ipaddress.IPv6Address
    first, last = address(block.first), address(block.last)
    return first.version, min(n.prefixlen for n in ipaddress.summarize_address_range(first, last))


def aggregation_problem(adv: BGPAdvertisementConfig, pool: str, pool_obj: Mapping[str, Any]) -> str | None:
    """Why ADV's aggregation is shorter than one of POOL's entries (the aggregate would cover addresses
    outside the pool), or None."""
    for entry in (pool_obj.get("spec") or {}).get("addresses") or []:
        found = _shortest_prefix(str(entry))
        if found is None:
            continue
        version, prefix = found
        length = adv.aggregation_length if version == 4 else adv.aggregation_length_v6
        if length < prefix:
            return (f"aggregation length {length} is shorter than pool {pool}'s entry {entry} (/{prefix}): the "
                    "aggregate would attract traffic for addresses outside the pool")
    return None


def parse_config(peers: Iterable[Mapping[str, Any]], bfd_profiles: Iterable[Mapping[str, Any]],
                 advertisements: Iterable[Mapping[str, Any]], *, secrets: Mapping[str, Mapping[str, Any]],
                 pools: Mapping[str, Mapping[str, Any]]) -> BGPConfig:
    """BGP mode's configuration from its objects, the Secrets of IronLB's namespace and the IPAddressPools (each
    by name); every object left out or changed is named in `problems`."""
    out = BGPConfig()
    for obj in bfd_profiles:
        if (profile := _checked(out, BFDPROFILE_KIND, obj, parse_bfd_profile)) is not None:
            out.bfd_profiles[profile.name] = profile
    for obj in peers:
        if (peer := _checked(out, BGPPEER_KIND, obj, lambda o: _peer(o, secrets, out))) is not None:
            out.peers[peer.name] = peer
    for obj in advertisements:
        if (adv := _checked(out, BGPADVERTISEMENT_KIND, obj, parse_advertisement)) is not None:
            _check_references(out, adv, pools)
    return out


def _checked(out: BGPConfig, kind: str, obj: Mapping[str, Any], parse: Any) -> Any:
    try:
        return parse(obj)
    except InvalidSpec as exc:
        out.problems.append(Problem(kind, _name(obj), BGPConfigReason.INVALID_SPEC, str(exc)))
    except PasswordProblem as exc:
        out.problems.append(Problem(kind, _name(obj), exc.reason, str(exc)))
    return None


def _peer(obj: Mapping[str, Any], secrets: Mapping[str, Mapping[str, Any]], out: BGPConfig) -> BGPPeerConfig:
    spec, name = _spec(obj), _name(obj)
    peer = BGPPeerConfig(name, **_peer_fields(spec), password=_password(spec, secrets))
    profile_name = _str(spec, "bfdProfile")
    if not profile_name:
        return peer
    profile = out.bfd_profiles.get(profile_name)
    if profile is None:
        out.problems.append(Problem(BGPPEER_KIND, name, BGPConfigReason.BFD_PROFILE_NOT_FOUND,
                                    f"BFDProfile {profile_name} does not exist: the session runs without BFD"))
        return peer
    if profile.echo_mode and peer.ebgp_multihop:
        out.problems.append(Problem(BGPPEER_KIND, name, BGPConfigReason.ECHO_MODE_MULTI_HOP,
                                    f"BFDProfile {profile_name} asks for echo mode, which needs a single-hop "
                                    "session: echo is off for this multi-hop peer"))
        profile = replace(profile, echo_mode=False)
    return replace(peer, bfd=profile)


def _check_references(out: BGPConfig, adv: BGPAdvertisementConfig, pools: Mapping[str, Mapping[str, Any]]) -> None:
    def problem(reason: BGPConfigReason, message: str) -> None:
        out.problems.append(Problem(BGPADVERTISEMENT_KIND, adv.name, reason, message))

    if missing := sorted(set(adv.peers) - set(out.peers)):
        problem(BGPConfigReason.PEER_NOT_FOUND, f"BGPPeers {', '.join(missing)} do not exist (or are not usable): "
                                                "nothing is announced to them")
    if missing := sorted(set(adv.pools) - set(pools)):
        problem(BGPConfigReason.POOL_NOT_FOUND, f"IPAddressPools {', '.join(missing)} do not exist")
    for name, pool in sorted(pools.items()):
        labels = (pool.get("metadata") or {}).get("labels")
        if adv.covers_pool(name, labels) and (why := aggregation_problem(adv, name, pool)):
            problem(BGPConfigReason.AGGREGATION_TOO_SHORT, why + "; the advertisement is left out")
            return
    out.advertisements[adv.name] = adv
