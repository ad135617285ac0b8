"""The lab's state file: a lab recorded by the untyped code still loads, the typed record writes the same
keys back, and a file it cannot read is an error that names the file and the way out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e.lab import state as lab_state
from e2e.lab.state import LabState, Pod, Proc, StateFileError, Status, load_state, save_state, update_state

# A dual-stack lab with IronLB, one pod and node-3 killed, as the untyped code wrote it.
RECORDED = {
    "bin_dir": "/root/.cache/ironlb/tools/bin",
    "nodes": 3,
    "ipv6": True,
    "status": "ready",
    "ironlb": True,
    "metallb": False,
    "killed": ["node-3"],
    "up_seconds": 21.4,
    "procs": {
        "etcd": {"pid": 4242, "argv": ["/bin/etcd", "--name", "lab"], "netns": None, "start": "123456"},
        "speaker-node-1": {"pid": 4300, "argv": ["python", "-m", "e2e.lab.supervise"], "netns": "ilb-node-1",
                           "start": "123999"},
    },
    "pods": {"web-0": {"app": "web", "namespace": "default", "node": "node-1",
                       "ips": ["198.19.1.10", "2001:db8:19:1::a"], "port": 8080}},
    "pod_ip_counter": {"node-1": 10},
}


@pytest.fixture
def state_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state.json"
    monkeypatch.setattr(lab_state, "STATE_FILE", path)
    monkeypatch.setattr(lab_state, "LAB_DIR", tmp_path)
    return path


def test_no_file_is_a_lab_that_is_down(state_file: Path) -> None:
    state = load_state()
    assert state == LabState() and state.status is Status.DOWN and state.node_names == []


def test_a_lab_recorded_by_the_untyped_code_loads_typed(state_file: Path) -> None:
    state_file.write_text(json.dumps(RECORDED))
    state = load_state()
    assert state.status is Status.READY and state.bin_dir == Path("/root/.cache/ironlb/tools/bin")
    assert (state.nodes, state.ipv6, state.ironlb, state.metallb, state.kubelet) == (3, True, True, False, False)
    assert state.procs["etcd"] == Proc(pid=4242, argv=("/bin/etcd", "--name", "lab"), netns=None, start="123456")
    assert state.pods["web-0"] == Pod(app="web", namespace="default", node="node-1",
                                      ips=("198.19.1.10", "2001:db8:19:1::a"), port=8080)
    assert [n.name for n in state.live_nodes] == ["node-1", "node-2"]
    assert state.node_names == ["node-1", "node-2", "node-3"]


def test_the_record_writes_back_every_key_as_it_was(state_file: Path) -> None:
    state_file.write_text(json.dumps(RECORDED))
    save_state(load_state())
    written = json.loads(state_file.read_text())
    assert {k: written[k] for k in RECORDED} == RECORDED
    assert load_state() == LabState.from_json(RECORDED)


def test_updates_are_recorded_and_reread(state_file: Path) -> None:
    state_file.write_text(json.dumps(RECORDED))
    update_state(metallb=True)
    state = load_state().with_killed("node-3", False).with_killed("node-1", True).without_proc("etcd")
    save_state(state)
    again = load_state()
    assert again.metallb and again.killed == ("node-1",) and set(again.procs) == {"speaker-node-1"}
    assert again.without_pods(["web-0"]).pods == {}


@pytest.mark.parametrize("content", [
    "{not json",
    json.dumps({**RECORDED, "router": {"ip": "192.0.2.1"}}),  # a key this code does not know
    json.dumps({**RECORDED, "status": "melting"}),
    json.dumps({**RECORDED, "procs": {"etcd": {"pid": 1}}}),  # an entry missing its fields
    json.dumps(["a", "list"]),
])
def test_a_file_it_cannot_read_names_the_file_and_the_way_out(state_file: Path, content: str) -> None:
    state_file.write_text(content)
    with pytest.raises(StateFileError) as exc:
        load_state()
    assert str(state_file) in str(exc.value) and "python -m e2e.lab down" in str(exc.value)
