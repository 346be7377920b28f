"""The simulator's own certificate authority and the server certificate it issues.

The engine's API and the imageio daemon both serve the server certificate, so a client that
trusts DIR/ca.pem (as it would trust an engine's CA) can talk to both.
"""

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Pki:
    """Paths of the CA certificate and of the server's key and certificate."""

    ca_file: Path
    key_file: Path
    cert_file: Path


def ensure_pki(state_dir: Path, host: str) -> Pki:
    """Create the CA and a server certificate under state_dir once; reuse them on restart."""
    pki_dir = state_dir / "pki"
    pki_dir.mkdir(parents=True, exist_ok=True)
    pki = Pki(state_dir / "ca.pem", pki_dir / "server.key", pki_dir / "server.pem")
    if pki.ca_file.exists() and pki.key_file.exists() and pki.cert_file.exists():
        return pki
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate(_name("oVirt simulator CA"), _name("oVirt simulator CA"),
                           ca_key.public_key(), ca_key, ca=True, host=None)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _certificate(_name(host), ca_cert.subject, server_key.public_key(), ca_key,
                               ca=False, host=host)
    (pki_dir / "ca.key").write_bytes(_key_pem(ca_key))
    pki.key_file.write_bytes(_key_pem(server_key))
    pki.key_file.chmod(0o600)
    pki.cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    pki.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return pki


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certificate(subject, issuer, public_key, signing_key, ca: bool, host: str | None):
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, encipher_only=False,
                          decipher_only=False), critical=True)
    else:
        names: list[x509.GeneralName] = [x509.DNSName("localhost")]
        for candidate in sorted({host, "127.0.0.1", "127.0.0.2"}):
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(candidate)))
            except ValueError:
                names.append(x509.DNSName(candidate))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signing_key, hashes.SHA256())
