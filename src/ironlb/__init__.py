"""IronLB: LoadBalancer Services for bare-metal Kubernetes."""
