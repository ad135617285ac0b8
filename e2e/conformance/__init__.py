"""The upstream Kubernetes LoadBalancer e2e specs on the real-node lab, in both forwarding modes
(`make conformance`, docs/conformance.md): build, run, JUnit, classification, rendering."""
