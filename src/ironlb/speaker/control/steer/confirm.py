"""A death the mesh reports, confirmed on the data path before any endpoint is skipped.

Heartbeats stop for more reasons than a dead node: a frozen or restarting speaker, a firewall on the
heartbeat port, a partition of the speakers alone. None of those stops a node's pods from serving, so a
node counts as dead for steering only while its host does not answer either: a TCP connect to its
kube-proxy health port that neither completes nor is refused within `timeout`. A refusal is an answer
(the host's kernel is alive), so a node without kube-proxy is never confirmed dead by mistake.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Awaitable, Callable, Mapping

from ironlb.common.tasks import stop_all

log = logging.getLogger(__name__)
# Errors that mean "nobody there": what a connect to a dead host ends with when the timeout does not.
UNREACHABLE = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ETIMEDOUT})


async def host_answers(address: str, port: int, timeout: float) -> bool:
    """Does ADDRESS's kernel answer a TCP connect to PORT (accepted or refused) within TIMEOUT seconds?"""
    writer = None
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(address, port)
        return True
    except ConnectionRefusedError:
        return True
    except TimeoutError:
        return False
    except OSError as exc:
        return exc.errno not in UNREACHABLE
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class DeathConfirmer:
    """Probes each node the mesh reports dead; `confirmed` holds those whose host does not answer either."""

    def __init__(self, on_change: Callable[[], None], port: int, timeout: float = 0.25, interval: float = 1.0,
                 check: Callable[[str, int, float], Awaitable[bool]] = host_answers) -> None:
        self.on_change, self.port, self.timeout, self.interval, self.check = on_change, port, timeout, interval, check
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._confirmed: set[str] = set()

    @property
    def confirmed(self) -> frozenset[str]:
        """Nodes the mesh reports dead and whose host does not answer."""
        return frozenset(self._confirmed)

    def watch(self, suspects: Mapping[str, str]) -> None:
        """Probe exactly these nodes (name -> address) from now on; a node no longer suspected is forgotten."""
        wanted = set(suspects.items())
        for key in set(self._tasks) - wanted:
            self._tasks.pop(key).cancel()
            if key[0] not in suspects and key[0] in self._confirmed:
                self._confirmed.discard(key[0])
                self.on_change()
        for node, address in wanted - set(self._tasks):
            self._tasks[(node, address)] = asyncio.get_running_loop().create_task(self._run(node, address))

    async def _run(self, node: str, address: str) -> None:
        while True:
            answers = await self.check(address, self.port, self.timeout)
            if not answers and node not in self._confirmed:
                self._confirmed.add(node)
                log.warning("node %s is dead: no heartbeats, and %s does not answer on port %d", node, address,
                            self.port)
                self.on_change()
            elif answers and node in self._confirmed:
                self._confirmed.discard(node)
                log.info("node %s answers on %s again: its endpoints take new connections", node, address)
                self.on_change()
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        """Stop every probe."""
        await stop_all(self._tasks)
