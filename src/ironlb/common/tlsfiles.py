"""A TLS server context from a certificate and key on disk, reloaded when the files change (cert-manager renews)."""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Callable

log = logging.getLogger(__name__)
RECHECK_S = 30.0  # how often the files' modification times are looked at


class TlsFiles:
    """The server context for CERT and KEY (PEM), made again once either file changes."""

    def __init__(self, cert: str, key: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.cert, self.key, self.clock = cert, key, clock
        self._stamp = self._mtimes()
        self._context = self._load()  # a bad pair fails the start, loudly
        self._checked = clock()

    def context(self) -> ssl.SSLContext:
        """The context to use now."""
        if self.clock() - self._checked >= RECHECK_S:
            self._checked = self.clock()
            stamp = self._mtimes()
            if stamp != self._stamp:
                try:
                    self._context, self._stamp = self._load(), stamp
                    log.info("metrics TLS certificate reloaded from %s", self.cert)
                except (OSError, ssl.SSLError) as exc:  # half-written during a renewal: keep the old one
                    log.warning("cannot reload the metrics TLS certificate (kept the previous one): %s", exc)
        return self._context

    def _mtimes(self) -> tuple[float, float]:
        try:
            return os.stat(self.cert).st_mtime, os.stat(self.key).st_mtime
        except OSError:
            return 0.0, 0.0

    def _load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        return context
