"""The IronLB lab: a real Kubernetes control plane, real kube-proxy and real kernel networking on one machine."""
