"""Peer liveness: authenticated UDP heartbeats between speakers, detecting a dead node in < 1 s."""
