"""Modbus/TCP Security (the Modbus Organization's TLS profile): context and client roles.

The TLS listener (default port 802) speaks TLS 1.2 or newer and requires a client
certificate signed by the configured client CA (mutual X.509 authentication). The client's
role is the UTF8String in its certificate's extension 1.3.6.1.4.1.50316.802.1; config maps
role names to ``read-only`` or ``read-write`` and the write gate enforces it (a role that is
not mapped, or a certificate without a role, may read but not write).

``cryptography`` is imported only here, only when a role is read, so a gateway without TLS
never loads it.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Final

ROLE_OID: Final = "1.3.6.1.4.1.50316.802.1"
NO_ROLE: Final = ""  # a certificate without the role extension
STRING_TAGS: Final = (0x0C, 0x13, 0x16)  # UTF8String, PrintableString, IA5String


class TlsSetupError(ValueError):
    """One line: which file, and what is wrong with it."""


def server_context(cert: Path, key: Path, client_ca: Path) -> ssl.SSLContext:
    """A server context: TLS >= 1.2, our certificate and key, client certificates required."""
    for label, path in (("cert", cert), ("key", key), ("client_ca", client_ca)):
        if not path.is_file():
            raise TlsSetupError(f"modbus.tls.{label}: no such file {path}")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as e:
        raise TlsSetupError(f"modbus.tls.cert/key: cannot use {cert} with {key}: {_why(e)}") from None
    try:
        ctx.load_verify_locations(cafile=client_ca)
    except (ssl.SSLError, OSError) as e:
        raise TlsSetupError(f"modbus.tls.client_ca: cannot use {client_ca}: {_why(e)}") from None
    return ctx


def _why(e: Exception) -> str:
    if isinstance(e, ssl.SSLError) and e.reason:
        return e.reason.lower().replace("_", " ")
    return str(getattr(e, "strerror", None) or e)


def role_of_transport(transport: asyncio.BaseTransport) -> str:
    """The role in the peer's certificate (``NO_ROLE`` when it has none)."""
    tls = transport.get_extra_info("ssl_object")
    der = tls.getpeercert(binary_form=True) if tls is not None else None
    return role_of_der(der) if der else NO_ROLE


def role_of_der(der: bytes) -> str:
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(ROLE_OID))
    except x509.ExtensionNotFound:
        return NO_ROLE
    value = ext.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    return _der_string(raw)


def _der_string(raw: bytes) -> str:
    """The text of a DER string (one of STRING_TAGS); ``NO_ROLE`` when it is not one."""
    if len(raw) < 2 or raw[0] not in STRING_TAGS:
        return NO_ROLE
    length, pos = raw[1], 2
    if length & 0x80:
        n = length & 0x7F
        length, pos = int.from_bytes(raw[2 : 2 + n], "big"), 2 + n
    body = raw[pos : pos + length]
    if len(body) != length:
        return NO_ROLE
    return body.decode("utf-8", errors="replace")
