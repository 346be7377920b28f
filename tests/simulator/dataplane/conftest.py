"""A data plane per test, with its own certificate authority, stopped afterwards."""

import datetime
import ipaddress
import os
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from simulator.dataplane import DataPlane

MiB = 1024 * 1024


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(key_file, cert_file, ca_file) of a server certificate for 127.0.0.1 and 127.0.0.2."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    now = datetime.datetime.now(datetime.UTC)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
             x509.IPAddress(ipaddress.ip_address("127.0.0.2"))]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (folder / "server.key", folder / "server.pem", folder / "ca.pem")
    paths[0].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return paths


@pytest.fixture
def dataplane(tmp_path, pki):
    """A started data plane; after the test, no process of it may be left."""
    plane = DataPlane(tmp_path / "state", host="127.0.0.1", tls=pki)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()
    assert processes_using(plane.home) == [], "a process of the data plane survived stop()"
    assert processes_using(plane.sock_dir) == []


@pytest.fixture
def ca_file(pki) -> str:
    return str(pki[2])


def processes_using(marker: Path) -> list[int]:
    """Pids whose command line mentions marker (read from /proc, no psutil)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(marker) in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def qemu_img_compare(a: Path, b: Path) -> subprocess.CompletedProcess:
    """`qemu-img compare` of two images (formats probed); returncode 0 means identical."""
    return subprocess.run(["qemu-img", "compare", "-U", str(a), str(b)],
                          capture_output=True, text=True)


def guest_bytes(image: Path, scratch: Path) -> bytes:
    """The guest's view of an image (any format, whole chain) as bytes."""
    raw = scratch / f"{image.name}.guest.raw"
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(image), str(raw)],
                   check=True, capture_output=True)
    try:
        return raw.read_bytes()
    finally:
        raw.unlink()
