"""/metrics in HTTPS: answered over TLS, a silent handshake counts in the cap, a renewed certificate is used."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from ironlb.common import tlsfiles
from ironlb.common.http import HealthServer, Refusal
from ironlb.common.tlsfiles import TlsFiles

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificates")


def certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for CN=NAME and its key."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def https_get(port: int, path: str = "/metrics") -> tuple[bytes, str]:
    """The answer's first line, and the server certificate's CN."""
    client = ssl.create_default_context()
    client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.write(f"GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
        answer = await reader.read()
    finally:
        writer.close()
    pem = ssl.DER_cert_to_PEM_cert(der)
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject"], input=pem, capture_output=True,
                             text=True).stdout
    return answer.split(b"\r\n", 1)[0], subject.strip().rsplit("=", 1)[-1].strip()


async def test_https_a_silent_handshake_counts_and_a_renewal_is_used(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = certificate(tmp_path, "first")
    clock = [0.0]
    files = TlsFiles(str(cert), str(key), clock=lambda: clock[0])
    srv = HealthServer(CollectorRegistry(), lambda: (True, "ok"), "127.0.0.1", 0, tls=files.context,
                       max_connections=2, max_per_client=8)
    await srv.start()
    try:
        assert await https_get(srv.port) == (b"HTTP/1.1 200 OK", "first")
        # Two connections that never start their handshake fill the listener; a third evicts the oldest.
        silent = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert srv.metrics.open == 2
        assert (await https_get(srv.port))[0] == b"HTTP/1.1 200 OK"
        assert srv.metrics.refused[Refusal.EVICTED] >= 1
        for _, writer in silent:
            writer.close()
        renewed, renewed_key = certificate(tmp_path, "second")
        shutil.copy(renewed, cert)
        shutil.copy(renewed_key, key)
        assert (await https_get(srv.port))[1] == "first"  # not looked at again yet
        clock[0] += tlsfiles.RECHECK_S
        assert (await https_get(srv.port))[1] == "second"
        key.write_text("half-written")  # a renewal caught midway: the previous certificate stays
        clock[0] += 2 * tlsfiles.RECHECK_S
        assert (await https_get(srv.port))[1] == "second"
    finally:
        await srv.stop()
