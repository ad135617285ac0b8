"""The lab's command line: unknown flags are errors, and exec/kubectl/helm pass arguments on untouched."""

from __future__ import annotations

import pytest

from e2e.lab import __main__ as cli
from e2e.lab.state import LabState


def test_unknown_flag_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["up", "--no-such-flag"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_unknown_flag_of_a_subcommand_is_an_error() -> None:
    with pytest.raises(SystemExit):
        cli.main(["workload", "deploy", "web", "--replcas", "3"])


@pytest.mark.parametrize("tool", ["kubectl", "helm"])
def test_tools_get_their_arguments_in_order(tool: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(cli.lab, "tool", lambda name, argv: calls.append((name, argv)) or 0)
    argv = ["-n", "ironlb-system", "get", "pods", "-o", "wide", "--kubeconfig=/x"]
    assert cli.main([tool, *argv]) == 0
    assert calls == [(tool, argv)]


def test_exec_splits_target_from_command(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(cli.lab, "exec_in", lambda name, argv: calls.append((name, argv)) or 0)
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    assert cli.main(["exec", "node-1", "--", "ip", "-br", "addr"]) == 0
    assert cli.main(["exec", "client", "curl", "-s", "http://203.0.113.10/"]) == 0
    assert calls == [("node-1", ["ip", "-br", "addr"]), ("client", ["curl", "-s", "http://203.0.113.10/"])]


def test_kubelet_is_a_known_flag_of_up() -> None:
    args = cli._parser().parse_args(["up", "--kubelet", "--nodes", "2", "--ipv6", "--without-ironlb"])
    assert (args.kubelet, args.nodes, args.ipv6, args.without_ironlb) == (True, 2, True, True)



@pytest.mark.parametrize(("which", "other_procs"), [("metallb", ("operator", "speaker-")),
                                                    ("ironlb", ("metallb-",))])
def test_starting_one_implementation_beside_the_other_is_refused(
        which: str, other_procs: tuple[str, ...], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # The other implementation's recorded processes run; nothing else is touched before the refusal.
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    monkeypatch.setattr(cli, "load_state", LabState)
    monkeypatch.setattr(cli.lab.procs, "running",
                        lambda prefix="": {prefix: {}} if prefix.startswith(other_procs) else {})
    assert cli.main([which, "start"]) == 2
    err = capsys.readouterr().err
    assert "only one implementation at a time" in err and "stop` first" in err
