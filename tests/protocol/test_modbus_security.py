"""Modbus/TCP Security: TLS 1.2+, mutual X.509, roles from the certificate, enforced by the
one write gate (issue 11, item 7). Certificates are made per test run in a temp folder."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
import struct
from pathlib import Path

import pytest

from gateway.app import Gateway, StartupError
from gateway.config import TlsConfig, parse_config
from gateway.core.writes import AuditRecord
from gateway.frontends.modbus.tls import ROLE_OID, role_of_der
from registers import CompiledMap
from tests.modbus_rig import MakeRig, RawClient, Rig, read_pdu, words
from tests.pki import Authority, Issued, client_context

VEBUS_UNIT = 227
WRITE_MODE_OFF = struct.pack(">BHH", 6, 33, 4)
ROLES = {"operator": "read-write", "monitor": "read-only"}


@dataclasses.dataclass
class Pki:
    ca: Authority
    server: Issued
    clients: dict[str, Issued]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = Authority(folder)
    rogue = Authority(folder, "rogue CA")
    clients = {
        "operator": ca.issue("operator", role="operator"),
        "monitor": ca.issue("monitor", role="monitor"),
        "no role": ca.issue("norole"),
        "expired": ca.issue("expired", role="operator", expired=True),
        "wrong CA": rogue.issue("rogue", role="operator"),
    }
    return Pki(ca, ca.issue("server", server=True), clients)


async def tls_rig(make_rig: MakeRig, pki: Pki) -> Rig:
    from gateway.frontends.modbus.tls import server_context

    context = server_context(pki.server.cert, pki.server.key, pki.ca.pem)
    return await make_rig(tls=context, roles=ROLES)


async def connect(rig: Rig, pki: Pki, who: str | None) -> RawClient:
    ctx = client_context(pki.ca.pem, pki.clients[who] if who is not None else None)
    r, w = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", rig.port, ssl=ctx, server_hostname="localhost"), 5
    )
    return RawClient(r, w)


async def served(rig: Rig, pki: Pki, who: str | None) -> bool:
    """True when this client gets an answer to a read."""
    try:
        c = await connect(rig, pki, who)
        ok = words(await c.request(VEBUS_UNIT, read_pdu(33, 1))) == [3]
    except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError, TimeoutError, OSError):
        return False
    with contextlib.suppress(Exception):
        await c.close()
    return ok


async def test_read_write_role_writes_and_read_only_role_only_reads(make_rig: MakeRig, pki: Pki) -> None:
    rig = await tls_rig(make_rig, pki)
    heard: list[AuditRecord] = []
    rig.server.gate.record_hooks.append(heard.append)
    monitor = await connect(rig, pki, "monitor")
    assert words(await monitor.request(VEBUS_UNIT, read_pdu(33, 1))) == [3]
    assert await monitor.request(VEBUS_UNIT, WRITE_MODE_OFF) == bytes((0x86, 2))
    assert rig.owner.writes == []
    operator = await connect(rig, pki, "operator")
    assert await operator.request(VEBUS_UNIT, WRITE_MODE_OFF) == WRITE_MODE_OFF
    assert rig.store.get("vebus", 276, "/Mode") == 4
    assert [(r.writer.frontend, r.writer.role, r.refusal is None) for r in heard] == [
        ("modbus-tls", "monitor", False),
        ("modbus-tls", "operator", True),
    ]
    assert heard[1].old == {"/Mode": 3} and heard[1].writer.peer is not None
    # FC 23 by a read-only role: refused whole, nothing written
    fc23 = struct.pack(">BHHHHBH", 23, 33, 1, 33, 1, 2, 1)
    assert await monitor.request(VEBUS_UNIT, fc23) == bytes((0x97, 2))
    assert rig.store.get("vebus", 276, "/Mode") == 4
    for c in (monitor, operator):
        await c.close()


async def test_a_certificate_without_a_role_reads_but_cannot_write(make_rig: MakeRig, pki: Pki) -> None:
    rig = await tls_rig(make_rig, pki)
    c = await connect(rig, pki, "no role")
    assert words(await c.request(VEBUS_UNIT, read_pdu(33, 1))) == [3]
    assert await c.request(VEBUS_UNIT, WRITE_MODE_OFF) == bytes((0x86, 2))
    await c.close()


@pytest.mark.parametrize("who", [None, "expired", "wrong CA"])
async def test_without_a_valid_certificate_no_connection(make_rig: MakeRig, pki: Pki, who: str | None) -> None:
    rig = await tls_rig(make_rig, pki)
    assert not await served(rig, pki, who)
    assert await served(rig, pki, "monitor")  # the listener is fine for others


async def test_plain_modbus_on_the_tls_port_gets_nothing(make_rig: MakeRig, pki: Pki) -> None:
    rig = await tls_rig(make_rig, pki)
    c = await RawClient.connect(rig.port)
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError, TimeoutError)):
        await c.request(VEBUS_UNIT, read_pdu(33, 1))
    await c.close()


def test_role_is_read_from_the_extension(pki: Pki) -> None:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pki.clients["operator"].cert.read_bytes())
    assert cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(ROLE_OID))
    from cryptography.hazmat.primitives.serialization import Encoding

    assert role_of_der(cert.public_bytes(Encoding.DER)) == "operator"
    plain = x509.load_pem_x509_certificate(pki.clients["no role"].cert.read_bytes())
    assert role_of_der(plain.public_bytes(Encoding.DER)) == ""


async def test_a_bad_certificate_file_is_one_line_at_start(tmp_path: Path, cmap: CompiledMap, pki: Pki) -> None:
    base = parse_config({"state_dir": str(tmp_path), "modbus": {"listen": "127.0.0.1:0"}})
    for tls, message in [
        (
            TlsConfig(("127.0.0.1", 0), tmp_path / "none.pem", pki.server.key, pki.ca.pem),
            "modbus.tls.cert: no such file",
        ),
        (TlsConfig(("127.0.0.1", 0), pki.server.key, pki.server.key, pki.ca.pem), "modbus.tls.cert/key: cannot use"),
        (TlsConfig(("127.0.0.1", 0), pki.server.cert, pki.server.key, pki.server.key), "modbus.tls.client_ca: cannot"),
    ]:
        config = dataclasses.replace(base, modbus=dataclasses.replace(base.modbus, tls=tls))
        gw = Gateway(cmap, config)
        with pytest.raises(StartupError) as info:
            await gw.start()
        assert str(info.value).startswith(message), str(info.value)
        assert "\n" not in str(info.value)
        await gw.stop()
