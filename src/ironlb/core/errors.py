"""Errors of the pure core, each with a message a person understands."""

from __future__ import annotations


class AddressSpecError(ValueError):
    """A pool address entry (CIDR, IP or A-B range) is malformed."""


class SelectorError(ValueError):
    """A label selector is malformed."""
