"""Test certificates for the local stack's TLS listeners: a CA, a server certificate for 127.0.0.1 and
localhost, and client certificates named by their common name (the Kafka principal of an mTLS client).
Generated once per stack directory with ``cryptography``; nothing here is for production use."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 3650
# The PKCS#12 keystore's password (Kafka Connect's REST listener reads PKCS#12, not PEM): a test value.
KEYSTORE_PASSWORD = "ddbridge-local-keystore"


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of one stack: the CA, the server's certificate and key (and both in one file, the
    form Kafka's PEM keystore reads), and per client a certificate and key."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def server_keystore(self) -> Path:
        return self.directory / "server-keystore.pem"

    @property
    def server_pkcs12(self) -> Path:
        """The server's key and certificate chain as PKCS#12 (password ``KEYSTORE_PASSWORD``)."""
        return self.directory / "server-keystore.p12"

    def client_cert(self, name: str) -> Path:
        return self.directory / f"client-{name}.crt"

    def client_key(self, name: str) -> Path:
        return self.directory / f"client-{name}.key"


def ensure_tls_files(directory: Path, clients: tuple[str, ...] = ("ddbridge",)) -> TlsFiles:
    """The stack's certificates, created if missing (a CA, the server's, one per client)."""
    files = TlsFiles(directory)
    if not files.ca.exists():
        directory.mkdir(parents=True, exist_ok=True)
        ca_key, ca_cert = new_ca("ddbridge local stack CA")
        _write(files.directory / "ca.key", _key_pem(ca_key))
        _write(files.ca, ca_cert.public_bytes(serialization.Encoding.PEM))
        key, cert = issue(ca_key, ca_cert, "localhost", server=True)
        _write(files.server_key, _key_pem(key))
        _write(files.server_cert, cert.public_bytes(serialization.Encoding.PEM))
        _write(files.server_keystore, _key_pem(key) + cert.public_bytes(serialization.Encoding.PEM))
    loaded = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{directory / 'ca.key'} is not the stack's CA key: remove {directory} to regenerate")
    ca_key, ca_cert = loaded, x509.load_pem_x509_certificate(files.ca.read_bytes())
    if not files.server_pkcs12.exists():
        server_key = serialization.load_pem_private_key(files.server_key.read_bytes(), password=None)
        assert isinstance(server_key, ec.EllipticCurvePrivateKey)
        _write(
            files.server_pkcs12,
            pkcs12.serialize_key_and_certificates(
                b"server",
                server_key,
                x509.load_pem_x509_certificate(files.server_cert.read_bytes()),
                [ca_cert],
                serialization.BestAvailableEncryption(KEYSTORE_PASSWORD.encode()),
            ),
        )
    for name in clients:
        if not files.client_cert(name).exists():
            key, cert = issue(ca_key, ca_cert, name, server=False)
            _write(files.client_key(name), _key_pem(key))
            _write(files.client_cert(name), cert.public_bytes(serialization.Encoding.PEM))
    return files


def new_ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, name: str, *, server: bool
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A certificate signed by the CA: a server's for 127.0.0.1 and localhost, or a client's with
    common name ``name``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        usage = ExtendedKeyUsageOID.SERVER_AUTH
    else:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def write_pair(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, cert_path: Path, key_path: Path) -> None:
    """Write a certificate and its (unencrypted PKCS#8) key."""
    _write(key_path, _key_pem(key))
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600 if path.suffix in (".key", ".p12") or path.name.endswith("keystore.pem") else 0o644)
