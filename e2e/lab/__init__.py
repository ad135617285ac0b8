"""The IronLB lab: a real Kubernetes control plane, real kube-proxy and real kernel networking on one machine.

This package is the orchestration (`python -m e2e.lab up|down|image|...`) and the lab's typed state
(`state`). The programs it starts inside namespaces are in `e2e.probes`; the test API over it is in
`e2e.testkit`, which this package never imports."""
