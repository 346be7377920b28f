import datetime
import socket
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from plugin import engine as ovirt


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """One simulator (seed small) for a test module: the facade tests don't share state across modules."""
    from simulator.testing import running_simulator

    with running_simulator(tmp_path_factory.mktemp("sim") / "state", seed="small", delays=0.2) as handle:
        yield handle


@pytest.fixture(scope="module")
def credentials(sim) -> ovirt.ManagerCredentials:
    return ovirt.ManagerCredentials(sim.url, sim.username, sim.password, sim.ca_file.read_text())


@pytest.fixture
def conn(credentials):
    with ovirt.connect(credentials, timeout=30) as engine:
        yield engine


def other_ca_pem() -> str:
    """A CA certificate that signed nothing the simulator presents."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some other CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers (a hung engine)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()
