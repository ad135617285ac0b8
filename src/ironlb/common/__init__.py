"""Adapters shared by the operator and the speaker (HTTP health/metrics, logging, API client)."""
