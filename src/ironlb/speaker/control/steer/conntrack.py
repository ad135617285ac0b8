"""Forgetting the kernel's connection entries that lead to a dead node's pods.

A client's connection attempts that reached the dead pod before steering began leave conntrack entries
that no reply ever completes, and the kernel keeps them for minutes. A client that opens a new connection
from the same source port meets its old entry, with its old translation to the dead pod, and fails again.
Deleting the entries whose reply comes from a dead pod's address (`conntrack -D --reply-src`) lets such a
connection, and any retransmission of the old ones, be translated afresh: through the steering table.
"""

from __future__ import annotations

import asyncio
import logging

from ironlb.core.addresses import IPV4, family_of

log = logging.getLogger(__name__)


async def forget_flows(address: str, conntrack: str = "conntrack") -> bool:
    """Delete every conntrack entry whose reply comes from ADDRESS; True when conntrack ran and succeeded."""
    family = "ipv4" if family_of(address) == IPV4 else "ipv6"
    try:
        proc = await asyncio.create_subprocess_exec(
            conntrack, "-D", "-f", family, "--reply-src", address,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, err = await proc.communicate()
    except OSError as exc:
        log.warning("cannot run %s to forget the flows to %s: %s", conntrack, address, exc)
        return False
    # conntrack exits 1 when nothing matched, and says how many entries it deleted either way.
    text = err.decode(errors="replace").strip()
    if "flow entries have been deleted" not in text:
        log.warning("%s could not forget the flows to %s (exit %s): %s", conntrack, address, proc.returncode, text)
        return False
    log.info("%s: %s", address, text.rsplit(": ", 1)[-1])
    return True
