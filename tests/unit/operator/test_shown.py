"""ShownIPs: who may show each IP, through observe, write, settle and forget, one holder or several."""

from __future__ import annotations

from ironlb.operator.shown import ShownIPs


def test_one_service_showing_an_ip_then_a_second_then_none() -> None:
    shown = ShownIPs()
    shown.observe("ns/a", ["203.0.113.1"])
    assert shown.showing("203.0.113.1") == {"ns/a"}
    shown.writing("ns/b", ["203.0.113.1"])  # a write in flight counts as shown
    assert shown.showing("203.0.113.1") == {"ns/a", "ns/b"}
    shown.observe("ns/a", [])
    assert shown.showing("203.0.113.1") == {"ns/b"}
    shown.settled("ns/b", landed=False)  # refused: b shows nothing after all
    assert shown.showing("203.0.113.1") == set()


def test_a_landed_write_is_shown_and_forget_clears_every_ip() -> None:
    shown = ShownIPs()
    shown.writing("ns/a", ["203.0.113.1", "2001:db8::1"])
    shown.settled("ns/a", landed=True)
    assert shown.shown_by("ns/a") == {"203.0.113.1", "2001:db8::1"}
    shown.observe("ns/c", ["203.0.113.1"])
    shown.forget("ns/a")
    assert shown.showing("203.0.113.1") == {"ns/c"} and shown.showing("2001:db8::1") == set()


def test_the_set_returned_is_a_copy() -> None:
    shown = ShownIPs()
    shown.observe("ns/a", ["203.0.113.1"])
    shown.showing("203.0.113.1").add("ns/x")
    assert shown.showing("203.0.113.1") == {"ns/a"}
