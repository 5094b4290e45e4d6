"""The local stack's test certificates: the server's certificate is for 127.0.0.1 and localhost and
signed by the stack's CA, in PEM (Kafka, PostgreSQL) and in a password-protected PKCS#12 keystore
(Kafka Connect's HTTPS listener); client certificates carry their name as CN; files are made once."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12

from ops.certs import KEYSTORE_PASSWORD, ensure_tls_files


def test_the_keystores_hold_the_server_certificate_signed_by_the_ca(tmp_path: Path) -> None:
    files = ensure_tls_files(tmp_path / "tls", ("ddbridge",))
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    key, cert, chain = pkcs12.load_key_and_certificates(files.server_pkcs12.read_bytes(), KEYSTORE_PASSWORD.encode())
    assert cert == server and chain == [ca] and isinstance(key, ec.EllipticCurvePrivateKey)
    assert files.server_pkcs12.stat().st_mode & 0o777 == 0o600
    client = x509.load_pem_x509_certificate(files.client_cert("ddbridge").read_bytes())
    client.verify_directly_issued_by(ca)
    assert client.subject.rfc4514_string() == "CN=ddbridge"


def test_existing_files_are_kept_and_a_missing_keystore_is_added(tmp_path: Path) -> None:
    files = ensure_tls_files(tmp_path / "tls")
    before = files.server_cert.read_bytes()
    files.server_pkcs12.unlink()  # a stack made before the keystore existed
    again = ensure_tls_files(tmp_path / "tls")
    assert again.server_cert.read_bytes() == before
    _, cert, _ = pkcs12.load_key_and_certificates(again.server_pkcs12.read_bytes(), KEYSTORE_PASSWORD.encode())
    assert cert == x509.load_pem_x509_certificate(before)
