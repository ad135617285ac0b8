"""The test API the e2e tests, integration tests and benchmarks use: a handle on the running lab
(`testing.Kube`, `ensure_lab`, `wait_for`, manifests), the duplicate-IP checker (`invariants`) and the
ServiceAccount identities tests run IronLB under (`identity`). It may import `e2e.lab`; the lab never
imports it."""
