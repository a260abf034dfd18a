"""A throw-away PKI for the Modbus/TCP Security tests: a CA, a server and client certificates
(with or without the role extension, expired, or signed by another CA), in a temp folder."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.frontends.modbus.tls import ROLE_OID

NOW = dt.datetime.now(dt.UTC)


@dataclass
class Issued:
    cert: Path
    key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _utf8(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 128
    return bytes((0x0C, len(raw))) + raw


class Authority:
    def __init__(self, folder: Path, name: str = "test CA") -> None:
        self.folder = folder
        self.key = _key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.pem = folder / f"{name.replace(' ', '-')}.pem"
        self.pem.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, stem: str, *, role: str | None = None, server: bool = False, expired: bool = False) -> Issued:
        key = _key()
        start, end = (
            (NOW - dt.timedelta(days=10), NOW - dt.timedelta(days=1))
            if expired
            else (
                NOW - dt.timedelta(days=1),
                NOW + dt.timedelta(days=30),
            )
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(stem))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
        )
        if server:
            san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        if role is not None:
            ext = x509.UnrecognizedExtension(x509.ObjectIdentifier(ROLE_OID), _utf8(role))
            builder = builder.add_extension(ext, critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        out = Issued(self.folder / f"{stem}.pem", self.folder / f"{stem}.key")
        out.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return out


def client_context(ca: Path, issued: Issued | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if issued is not None:
        ctx.load_cert_chain(issued.cert, issued.key)
    return ctx
