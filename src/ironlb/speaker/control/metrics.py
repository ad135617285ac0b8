"""Prometheus metrics of the speaker, read from the responders and heartbeats at scrape time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ironlb.api.reasons import AnnounceGateReason, AnnounceReason, SteeringReason
from ironlb.speaker.control.bgpmetrics import bgp_families

if TYPE_CHECKING:
    from ironlb.speaker.fast.messages import FastStats


class SpeakerCollector:
    """Collects counters from live objects on each scrape (no double bookkeeping on the hot path)."""

    def __init__(self, speaker: Callable[[], Any]) -> None:
        self.speaker = speaker

    def collect(self) -> Iterator[Any]:
        """Yield the metric families."""
        sp = self.speaker()
        fast = sp.fast  # None until the fast plane has started (metrics are served from before)
        stats = fast.stats if fast else None  # the fast plane's counters, as it last sent them
        yield _unannounced(sp)
        yield from _responders(sp, stats)
        yield _events(sp)
        yield from _ownership(fast)
        yield from _heartbeats(sp, fast, stats)
        yield from _forwarding(sp)
        yield from _steering(sp)
        yield from _announce_gate(sp)
        yield _channel(fast, stats)
        yield from bgp_families(sp)


def _responders(sp: Any, stats: FastStats | None) -> Iterator[Any]:
    """The ARP/NDP responders' counters, per interface."""
    requests = CounterMetricFamily("ironlb_speaker_requests", "ARP/NDP requests received", labels=["interface"])
    replies = CounterMetricFamily("ironlb_speaker_replies", "ARP/NDP replies sent", labels=["interface"])
    gratuitous = CounterMetricFamily("ironlb_speaker_gratuitous", "Gratuitous ARP / unsolicited NA sent",
                                     labels=["interface"])
    duplicates = CounterMetricFamily("ironlb_speaker_duplicate_answers",
                                     "Frames from another MAC claiming an IP we announce", labels=["interface"])
    in_kernel = GaugeMetricFamily("ironlb_speaker_arp_in_kernel", "1 where the in-kernel responder answers the "
                                  "interface's ARP requests, 0 where the speaker answers them from user space",
                                  labels=["interface"])
    refused = CounterMetricFamily("ironlb_speaker_filter_failures", "Packet filters the kernel refused on the "
                                  "interface's ARP/NDP sockets (which then pass every frame to the speaker)",
                                  labels=["interface"])
    for name, counts in sorted(stats.responders.items() if stats else ()):
        # the requests the kernel answered never reach the responder's socket: each is one reply too
        requests.add_metric([name], counts.requests + counts.kernel_replies)
        replies.add_metric([name], counts.replies + counts.kernel_replies)
        gratuitous.add_metric([name], counts.gratuitous)
        in_kernel.add_metric([name], 1 if counts.in_kernel else 0)
        refused.add_metric([name], counts.filter_failures)
    for name, n in sorted(sp.duplicates.items()):
        duplicates.add_metric([name], n)
    dropped = CounterMetricFamily("ironlb_speaker_kernel_drops", "ARP/NDP frames the kernel dropped on the "
                                  "speaker's packet sockets (receive queue full), never seen by the responders",
                                  labels=["interface"])
    for name, n in sorted(stats.kernel_drops.items() if stats else ()):
        dropped.add_metric([name], n)
    yield from (requests, replies, gratuitous, in_kernel, refused, duplicates, dropped)


def _events(sp: Any) -> CounterMetricFamily:
    """What became of the Events this speaker was asked to record."""
    events = CounterMetricFamily("ironlb_speaker_events", "Events this speaker was asked to record, by what "
                                 "became of them (emitted, aggregated, combined, dropped, throttled, failed)",
                                 labels=["outcome"])
    for outcome, n in sp.status.events.stats().items():
        events.add_metric([outcome], n)
    return events


def _ownership(fast: Any) -> Iterator[Any]:
    """The IPs this node answers for: a count, and one series per (IP, interface)."""
    announced = GaugeMetricFamily("ironlb_speaker_announced_ips", "IPs this node answers for")
    owned = fast.announcements() if fast else {}
    announced.add_metric([], len({ip for ips in owned.values() for ip in ips}))
    # One series per IP this node answers for (so `ironlb doctor` can tell a table from a claim);
    # bounded by the IPs this node owns, and built at scrape time only.
    announcing = GaugeMetricFamily("ironlb_speaker_announcing", "1 for each (IP, interface) this node answers "
                                   "ARP/NDP for", labels=["ip", "interface"])
    for name, ips in sorted(owned.items()):
        for ip in sorted(ips):
            announcing.add_metric([ip, name], 1)
    yield from (announced, announcing)


def _heartbeats(sp: Any, fast: Any, stats: FastStats | None) -> Iterator[Any]:
    """Peers, heartbeats, the source filter, the fast plane's memory, and fencing."""
    alive = GaugeMetricFamily("ironlb_speaker_alive_peers", "Speakers this node sees alive (itself included)")
    alive.add_metric([], len(fast.alive) if fast else 0)
    yield _gauge("ironlb_speaker_held_peers", "Peers whose speaker restarts, counted alive while their IPs are "
                 "answered for with their MACs", len(fast.membership.held()) if fast else 0)
    hb = CounterMetricFamily("ironlb_speaker_heartbeats", "Heartbeats", labels=["direction"])
    datagrams = CounterMetricFamily("ironlb_speaker_heartbeat_datagrams", "Datagrams on the heartbeat socket "
                                    "(heartbeats, format probes, goodbyes; refused ones included)",
                                    labels=["direction"])
    deaths = CounterMetricFamily("ironlb_speaker_peer_deaths", "Peers this node declared dead (heartbeats "
                                 "timed out or never came)")
    late = CounterMetricFamily("ironlb_speaker_heartbeat_late_rounds", "Heartbeat rounds sent over 50 ms "
                               "late (the fast plane's loop was held up)")
    source_filter = GaugeMetricFamily("ironlb_speaker_heartbeat_source_filter", "1 while the kernel drops "
                                      "heartbeat datagrams from non-peers (the socket filter is attached)")
    filter_failures = CounterMetricFamily("ironlb_speaker_heartbeat_source_filter_failures", "Times the kernel "
                                          "refused the heartbeat socket's filter (non-peers are then dropped in "
                                          "user space)")
    fast_rss = GaugeMetricFamily("ironlb_speaker_fast_plane_resident_bytes", "Resident memory of the fast "
                                 "plane's process")
    if stats is not None:
        hb.add_metric(["sent"], stats.counters.sent)
        hb.add_metric(["unsent"], stats.counters.unsent)
        hb.add_metric(["received"], stats.counters.received)
        datagrams.add_metric(["sent"], stats.counters.datagrams_sent)
        datagrams.add_metric(["received"], stats.counters.datagrams_received)
        for reason, n in sorted(stats.counters.rejected.items()):
            hb.add_metric([f"rejected-{reason}"], n)
        deaths.add_metric([], stats.counters.deaths)
        late.add_metric([], stats.counters.late)
        source_filter.add_metric([], 1 if stats.counters.source_filter else 0)
        filter_failures.add_metric([], stats.counters.filter_failures)
        fast_rss.add_metric([], stats.rss_mb * 1024 * 1024)
    yield from (alive, hb, datagrams, deaths, late, source_filter, filter_failures, fast_rss, _fenced(sp, stats))


def _fenced(sp: Any, stats: FastStats | None) -> GaugeMetricFamily:
    """1 while this node has fenced itself, labelled with the fencing decision."""
    fenced = GaugeMetricFamily("ironlb_speaker_fenced", "1 while this node has fenced itself (answers for "
                               "nothing), by the decision's reason", labels=["reason"])
    fencer = getattr(sp, "fencer", None)
    decision = fencer.decision.value if fencer is not None else "not-joined"
    fenced.add_metric([decision], 1 if stats is not None and stats.fenced else 0)
    return fenced


def _channel(fast: Any, stats: FastStats | None) -> CounterMetricFamily:
    """Frames either process refused from the other on the channel between them, by reason."""
    refused = CounterMetricFamily("ironlb_speaker_channel_refused", "Frames a process of the speaker refused "
                                  "from the other on the channel between them (not a message it handles)",
                                  labels=["process", "reason"])
    for process, counts in (("control", fast.refused() if fast else {}),
                            ("fast", stats.channel_refused if stats else {})):
        for reason, n in sorted(counts.items(), key=lambda item: item[0].value):
            refused.add_metric([process, reason.value], n)
    return refused


def _forwarding(sp: Any) -> Iterator[Any]:
    """NodePort forwarding: ports forwarded, failing backends, and whether nftables is in sync."""
    forwarded = GaugeMetricFamily("ironlb_speaker_forwarded_ports", "VIP ports this node forwards to NodePorts")
    forwarded.add_metric([], len(sp.forwarding.forwards) if sp.forwarding else 0)
    failing = GaugeMetricFamily("ironlb_speaker_failing_health_checks", "NodePort backends failing health checks")
    failing.add_metric([], len(sp.health.failing))
    in_sync = GaugeMetricFamily("ironlb_speaker_nftables_in_sync", "1 when the forwarding table is applied")
    in_sync.add_metric([], 0 if sp.nftables.last_error else 1)
    yield from (forwarded, failing, in_sync)


def _steering(sp: Any) -> Iterator[Any]:
    """Steering around dead nodes: announced Services by reason, confirmed-dead nodes, the table in sync."""
    services = GaugeMetricFamily("ironlb_speaker_steering_services",
                                 "Services this node announces, by whether their new connections skip dead nodes",
                                 labels=["reason"])
    counts = Counter(sp.steerer.plan.reasons.values())
    for reason in SteeringReason:  # every series, 0 included: an alert on SteeredAroundDeadNodes needs it
        services.add_metric([reason.value], counts.get(reason, 0))
    dead = GaugeMetricFamily("ironlb_speaker_confirmed_dead_nodes",
                             "Nodes with no heartbeats whose host does not answer either")
    dead.add_metric([], len(sp.steerer.confirmer.confirmed))
    in_sync = GaugeMetricFamily("ironlb_speaker_steering_nftables_in_sync", "1 when the steering table is applied")
    in_sync.add_metric([], 0 if sp.steerer.nftables.last_error else 1)
    yield from (services, dead, in_sync)


# What a held announcement is let go for (a held one that aged past the bound: WaitBoundPassed).
RELEASED_FOR = (AnnounceGateReason.KUBE_PROXY_SYNCED, AnnounceGateReason.BOUND_PASSED,
                AnnounceGateReason.KUBE_PROXY_ABSENT, AnnounceGateReason.KUBE_PROXY_UNREADABLE)


def _announce_gate(sp: Any) -> Iterator[Any]:
    """New announcements held for this node's kube-proxy: holds begun, ended by reason, held now, the last wait."""
    gate = getattr(sp, "gate", None)
    if gate is None:  # a speaker object without one (tests' stand-ins)
        return
    holds = CounterMetricFamily("ironlb_speaker_announce_holds", "New announcements of a Service that just "
                                "changed held until this node's kube-proxy had synced it")
    holds.add_metric([], gate.holds)
    ended = CounterMetricFamily("ironlb_speaker_announce_holds_released", "Held new announcements let go, by "
                                "why (KubeProxySynced, WaitBoundPassed, KubeProxyAbsent, ...)", labels=["reason"])
    for reason in RELEASED_FOR:  # every series, 0 included (an alert on WaitBoundPassed needs it)
        ended.add_metric([reason.value], gate.releases.get(reason, 0))
    held = _gauge("ironlb_speaker_announce_held_services", "Services whose new announcements are held now",
                  len(gate.held))
    wait = _gauge("ironlb_speaker_announce_hold_last_wait_seconds", "How long the last held announcement "
                  "waited for kube-proxy", gate.last_wait)
    yield from (holds, ended, held, wait)


# Why a Service IP goes unannounced: one series each, 0 included (an alert on NotInPool needs the series).
UNANNOUNCED = tuple(r for r in AnnounceReason if r not in (AnnounceReason.ANNOUNCING, AnnounceReason.ANNOUNCED_BY_PEER))


def _unannounced(sp: Any) -> GaugeMetricFamily:
    """Service IPs no node announces, by reason, as this speaker's last pass decided them."""
    followed = getattr(sp, "followed", None)
    counts = followed.reasons if followed is not None else Counter()
    family = GaugeMetricFamily("ironlb_speaker_unannounced_ips", "Service IPs that no node announces, by reason "
                               "(NotInPool: in no valid IPAddressPool's addresses, refused whatever the "
                               "Service's annotations say)", labels=["reason"])
    for reason in UNANNOUNCED:
        family.add_metric([reason.value], counts[reason])
    return family


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text)
    family.add_metric([], value)
    return family


def registry_for(speaker: Callable[[], Any]) -> CollectorRegistry:
    """A registry exposing the speaker's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SpeakerCollector(speaker))  # type: ignore[arg-type]
    ProcessCollector(registry=registry)  # the control plane's process_*: CPU and memory for the dashboard
    return registry
