"""`privgov serve --ssl-certfile --ssl-keyfile`: HTTPS with a self-signed certificate made here, trusted
by the client through `verify=`, and refused by a client that does not trust it."""
from __future__ import annotations

import datetime as dt
import ipaddress
import ssl

import httpx
import pytest

from tests.governance.server.conftest import DATASET, start_server, stop_server


def self_signed(tmp_path):
    """A certificate for 127.0.0.1 (as `openssl req -x509 -newkey ec ...` would make) and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "privgov test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    keyfile.chmod(0o600)
    return certfile, keyfile


@pytest.fixture(scope="module")
def https(live, tmp_path_factory):
    certfile, keyfile = self_signed(tmp_path_factory.mktemp("tls"))
    trust = ssl.create_default_context(cafile=str(certfile))
    url, proc = start_server(live.root, "--ssl-certfile", str(certfile), "--ssl-keyfile", str(keyfile),
                             scheme="https", verify=trust)
    yield url, trust
    stop_server(proc)


def test_https_with_the_trusted_certificate(https, live) -> None:
    url, trust = https
    headers = {"Authorization": f"Bearer {live.tokens['ana']}"}
    r = httpx.post(f"{url}/v1/decisions", json={"action": "read_masked", "dataset": DATASET,
                                                "purpose": "quality-review"}, headers=headers, verify=trust)
    assert r.status_code == 200 and r.json()["allowed"] is True


def test_untrusted_certificate_and_plain_http_are_refused(https) -> None:
    url, _ = https
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz")  # the system trust store does not know this certificate
    with pytest.raises(httpx.TransportError):
        httpx.get(url.replace("https://", "http://") + "/healthz")


def test_serve_refuses_half_a_tls_configuration(tmp_path) -> None:
    from governance.cli import main

    cert, _ = self_signed(tmp_path)
    assert main(["serve", "--ssl-certfile", str(cert), "--workspace", str(tmp_path)]) == 2
