"""Programs the lab and its tests start as processes (`python -m e2e.probes.NAME`), most inside a lab
network namespace: ARP and NDP probes, floods, the pod server, the restart supervisor.

Each is a standalone program: it imports nothing of `e2e.lab` or `e2e.testkit`, only the standard library
and IronLB's packet code, so it starts fast in any namespace.
"""
