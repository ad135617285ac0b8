"""The operator's Invalid condition on BGP objects: the parser's reason, written on change only, one Event when an
object turns invalid, none while it stays so, and a missing Secret said only once its watch has listed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ironlb.api.reasons import BGPConfigReason, ConditionType
from ironlb.operator.bgpobjects import BgpObjects
from tests.unit.speaker.control.test_bgpfeed import SecretWatches, bgp_peer


class Writer:
    """Records status writes and Events."""

    def __init__(self) -> None:
        self.statuses: list[tuple[str, str, dict[str, Any]]] = []
        self.events: list[tuple[str, Any, str]] = []

    async def write(self, resource: Any, name: str, status: dict[str, Any]) -> Any:
        self.statuses.append((resource.plural, name, status))
        return SimpleNamespace(ok=True)

    async def event(self, ref: Any, reason: Any, message: str, warning: bool = False) -> None:
        self.events.append((ref.name, reason, message))


def made() -> tuple[BgpObjects, Writer, SecretWatches]:
    writer, secrets = Writer(), SecretWatches()
    objects = BgpObjects(None, writer, writer.write, "ironlb", watch_secret=secrets)  # type: ignore[arg-type]
    objects.on_event("pools", "ADDED", {"metadata": {"name": "p"}, "spec": {"addresses": ["198.18.36.0/24"]}})
    return objects, writer, secrets


def invalid(status: dict[str, Any]) -> tuple[str, str]:
    [cond] = status["conditions"]
    assert cond["type"] == ConditionType.INVALID.value
    return cond["status"], cond["reason"]


async def test_a_peer_naming_a_missing_profile_is_invalid_until_it_exists() -> None:
    objects, writer, _ = made()
    objects.on_event("BGPPeer", "ADDED", bgp_peer("tor", bfdProfile="fast"))
    await objects.reconcile()
    await objects.reconcile()  # nothing changed: no write, no second Event
    [(plural, name, status)] = writer.statuses
    assert (plural, name, invalid(status)) == ("bgppeers", "tor", ("True", BGPConfigReason.BFD_PROFILE_NOT_FOUND.value))
    assert [(n, r) for n, r, _ in writer.events] == [("tor", BGPConfigReason.BFD_PROFILE_NOT_FOUND)]
    objects.on_event("BFDProfile", "ADDED", {"metadata": {"name": "fast"}, "spec": {}})
    await objects.reconcile()
    assert {(n, invalid(s)) for _, n, s in writer.statuses[1:]} == {
        ("tor", ("False", BGPConfigReason.VALID.value)), ("fast", ("False", BGPConfigReason.VALID.value))}
    assert len(writer.events) == 1  # a condition that turns good is no Warning


async def test_an_advertisement_naming_no_existing_pool_and_a_missing_secret() -> None:
    objects, writer, secrets = made()
    objects.on_event("BGPAdvertisement", "ADDED", {"metadata": {"name": "ad"}, "spec": {"ipAddressPools": ["gone"]}})
    objects.on_event("BGPPeer", "ADDED", bgp_peer("tor", passwordSecret={"name": "tor-pw"}))
    assert not objects.synced()  # the Secret's watch has not listed yet: a missing Secret is not said yet
    secrets.send("tor-pw", None)
    await objects.reconcile()
    reasons = {n: invalid(s) for _, n, s in writer.statuses}
    assert reasons == {"ad": ("True", BGPConfigReason.POOL_NOT_FOUND.value),
                       "tor": ("True", BGPConfigReason.PASSWORD_SECRET_NOT_FOUND.value)}
