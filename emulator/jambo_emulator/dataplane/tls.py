"""A self-signed certificate for the proxies, so URIs keep ``sslmode=require`` as the real ones do.

``sslmode=require`` encrypts but does not verify the certificate, which is what a local emulator
can honestly offer. ``cryptography`` comes with Airflow.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class ServerTls:
    context: ssl.SSLContext
    #: RFC 5929 ``tls-server-end-point`` channel-binding data of the certificate (SCRAM -PLUS).
    end_point: bytes


def end_point_hash(cert: x509.Certificate) -> bytes:
    """RFC 5929 4.1: the certificate hashed with its signature's hash algorithm, SHA-256 when
    that is MD5 or SHA-1 (or unknown), as PostgreSQL's ``be_tls_get_certificate_hash`` does."""
    algorithm = cert.signature_hash_algorithm
    name = algorithm.name if algorithm is not None else "sha256"
    if name in ("md5", "sha1"):
        name = "sha256"
    return hashlib.new(name, cert.public_bytes(serialization.Encoding.DER)).digest()


def server_context(directory: str) -> ServerTls:
    """Write a fresh key and certificate into ``directory``; a server-side context and the
    certificate's channel-binding data."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jambo-emulator")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.DNSName("*.neon.tech"), x509.DNSName("*.aws.neon.tech")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, "proxy.crt")
    key_path = os.path.join(directory, "proxy.key")
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    with open(cert_path, "wb") as fh:
        fh.write(cert.public_bytes(serialization.Encoding.PEM))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return ServerTls(context, end_point_hash(cert))
