"""The data mover as a real gunicorn process, through its client."""

import datetime as dt
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from repositories.datamover.client import DataMoverClient, Rejected, Unauthorized, Unreachable
from repositories.store import (
    BLOCK_SIZE,
    DiskIndex,
    block_digest,
    build_manifest,
    decode_chunk,
    encode_chunk,
    serialize_manifest,
)
from repositories.store.store import chunk_name
from tests.repositories.conftest import compressible_block, random_block, start_datamover
from tests.support.processes import running, wait_for_port

pytestmark = pytest.mark.integration


def send_disk(client: DataMoverClient, manifest_id: str, vm_id: str, blocks: list[bytes]) -> int:
    disk = DiskIndex(id="disk", size=len(blocks) * BLOCK_SIZE)
    by_digest = {}
    for index, block in enumerate(blocks):
        digest = block_digest(block)
        disk.set_block(index, digest)
        by_digest[digest] = block
    missing = client.missing(list(by_digest))
    with ThreadPoolExecutor(4) as pool:  # the worker sends from several threads
        list(pool.map(lambda d: client.put_chunk(d, encode_chunk(by_digest[d])), missing))
    client.put_manifest(build_manifest(manifest_id, vm_id, [disk]))
    return len(missing)


def test_a_disk_goes_in_and_comes_back_through_the_client(datamover):
    blocks = [random_block(), compressible_block(1), random_block(), compressible_block(1)]
    with datamover.client() as client:
        assert send_disk(client, "rp-1", "vm-1", blocks) == 3
        assert send_disk(client, "rp-2", "vm-2", blocks[:2]) == 0
        manifest = client.get_manifest("rp-1")
        restored = [decode_chunk(client.get_chunk(d)) for d in manifest.disks[0].blocks]
        assert restored == blocks
        assert [m["id"] for m in client.list_manifests()] == ["rp-1", "rp-2"]
        stats = client.stats(fresh=True)
        assert (stats["chunks"], stats["manifests"]) == (3, 2)
        assert stats["dedup_ratio"] > 1.5
        assert client.probe()["ok"]
    # With this gunicorn, bodies come straight off the socket (one copy, not six).
    assert "request bodies are read straight from the socket" in datamover.log.read_text()


def _put(digest: str, body: bytes, token: str) -> bytes:
    return (f"PUT /v1/chunks/{digest} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _responses(sock: socket.socket, count: int) -> list[int]:
    """The status codes of ``count`` responses with small bodies read off one connection."""
    data, statuses = b"", []
    while len(statuses) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            if len(rest) >= length:
                statuses.append(int(head.split()[1]))
                data = rest[length:]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"the data mover closed the connection after {statuses}"
        data += chunk
    return statuses


def test_requests_pipelined_on_one_connection_are_each_read_whole(datamover):
    chunks = [encode_chunk(b) for b in (compressible_block(7), random_block(), compressible_block(8))]
    digests = [block_digest(b) for b in (compressible_block(7), random_block(), compressible_block(8))]
    digests[1] = block_digest(decode_chunk(chunks[1]))
    port = int(datamover.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        # Three requests in one write: the first body's end and the next request share packets.
        sock.sendall(b"".join(_put(d, c, datamover.token) for d, c in zip(digests, chunks, strict=True)))
        assert _responses(sock, 3) == [201, 201, 201]
        sock.sendall(_put(digests[0], chunks[0], datamover.token))  # the connection is still good
        assert _responses(sock, 1) == [200]
    store = datamover.store()
    assert store.missing(digests) == []
    assert [store.get_chunk(d) for d in digests] == chunks


def test_a_body_cut_short_stores_nothing_and_the_data_mover_goes_on(datamover):
    chunk = encode_chunk(compressible_block(9))
    digest = block_digest(compressible_block(9))
    with datamover.client() as client:
        client.stats(fresh=True)  # the worker thread is up
    port = int(datamover.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_put(digest, chunk, datamover.token)[:-1000])
        time.sleep(0.3)  # the data mover is reading the body: the client goes away mid-body
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(_put(digest, chunk, datamover.token))
        assert _responses(sock, 1) == [201]  # stored now, and only now
    assert datamover.store().get_chunk(digest) == chunk


def test_a_wrong_or_missing_token_is_refused_on_every_call(datamover):
    digest = block_digest(b"x")
    calls = [("GET", "/v1/info", None), ("POST", "/v1/chunks/missing", b'{"digests": []}'),
             ("PUT", f"/v1/chunks/{digest}", encode_chunk(b"x")), ("GET", "/v1/manifests", None),
             ("DELETE", "/v1/manifests/rp-1", None), ("POST", "/v1/jobs", b'{"kind": "gc"}'),
             ("GET", "/v1/stats", None), ("POST", "/v1/probe", b"{}")]
    with DataMoverClient(datamover.url, "wrong-token") as client:
        for method, path, body in calls:
            with pytest.raises(Unauthorized):
                client.request(method, path, body)
    with DataMoverClient(datamover.url, "") as client, pytest.raises(Unauthorized):
        client.info()
    assert not datamover.store().has_chunk(digest)


def test_damaged_chunks_and_incomplete_manifests_are_refused(datamover):
    block = compressible_block(2)
    blob = bytearray(encode_chunk(block))
    blob[-1] ^= 0xFF
    with datamover.client() as client:
        with pytest.raises(Rejected) as refused:
            client.put_chunk(block_digest(block), bytes(blob))
        assert refused.value.status == 422 and "checksum" in str(refused.value)
        disk = DiskIndex(id="d", size=BLOCK_SIZE, blocks=[block_digest(block)])
        with pytest.raises(Rejected) as refused:
            client.put_manifest(build_manifest("rp-1", "vm", [disk]))
        assert refused.value.status == 409
        assert client.list_manifests() == []


def test_with_verify_content_a_misnamed_chunk_is_refused_and_without_it_verify_finds_it(tmp_path, output_dir):
    block = compressible_block(2)
    wrong_name = block_digest(b"other")
    for extra, refused in (("--verify-content", True), ("--no-verify-content", False)):
        name = extra.strip("-")
        port, token, args, log = start_datamover(tmp_path, output_dir, extra, name=name)
        with running(args, log_path=log) as process:
            wait_for_port(port, process=process)
            with DataMoverClient(f"http://127.0.0.1:{port}", token) as client:
                if refused:
                    with pytest.raises(Rejected, match="does not match its name"):
                        client.put_chunk(wrong_name, encode_chunk(block))
                    assert client.missing([wrong_name]) == [wrong_name]
                else:
                    assert client.put_chunk(wrong_name, encode_chunk(block))
                    disk = DiskIndex(id="d", size=BLOCK_SIZE, blocks=[wrong_name])
                    client.put_manifest(build_manifest("rp-1", "vm", [disk]))
                    report = client.verify(poll=0.2)
                    assert list(report["corrupt"]) == [wrong_name]
                    assert report["affected_manifests"] == ["rp-1"]


def test_verify_through_the_data_mover_finds_a_flipped_byte(datamover):
    block = compressible_block(3)
    with datamover.client() as client:
        send_disk(client, "rp-1", "vm-1", [block, random_block()])
        send_disk(client, "rp-2", "vm-2", [random_block()])
        assert client.verify(poll=0.2)["ok"]
        path = datamover.path / chunk_name(block_digest(block))
        data = bytearray(path.read_bytes())
        data[100] ^= 0x10
        path.write_bytes(bytes(data))
        seen = []
        report = client.verify(progress=seen.append, poll=0.2)
    assert not report["ok"]
    assert list(report["corrupt"]) == [block_digest(block)]
    assert report["affected_manifests"] == ["rp-1"]
    assert seen and seen[-1]["done"] == seen[-1]["total"] == 3


def test_garbage_collection_keeps_the_chunks_of_a_backup_in_flight(datamover):
    with datamover.client() as client:
        send_disk(client, "rp-old", "vm-1", [random_block(), compressible_block(4)])
        client.delete_manifest("rp-old")
        lease = client.open_lease("backup of vm-2", ttl=600)
        in_flight = {block_digest(b): b for b in (random_block(), compressible_block(5))}
        for digest, block in in_flight.items():
            client.put_chunk(digest, encode_chunk(block))
        report = client.collect_garbage(grace_seconds=0, poll=0.2)
        assert report["deleted"] == 0 and report["leases_open"] == 1
        assert client.missing(list(in_flight)) == []
        client.close_lease(lease["id"])
        report = client.collect_garbage(grace_seconds=0, poll=0.2)
        assert report["deleted"] == 4
        assert client.stats(fresh=True)["chunks"] == 0


def _send_half(port: int, method: str, path: str, token: str, body: bytes) -> socket.socket:
    """Send the headers and half the body of a request, then stall like a dropped sender."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    sock.sendall(head + body[: len(body) // 2])
    return sock


def test_a_data_mover_killed_mid_write_leaves_no_partial_chunk_and_no_manifest(tmp_path, output_dir):
    port, token, args, log = start_datamover(tmp_path, output_dir, name="killed")
    block = random_block()
    digest = block_digest(block)
    disk = DiskIndex(id="d", size=BLOCK_SIZE, blocks=[digest])
    manifest = serialize_manifest(build_manifest("rp-1", "vm", [disk]))
    with running(args, log_path=log) as process:
        wait_for_port(port, process=process)
        chunk_upload = _send_half(port, "PUT", f"/v1/chunks/{digest}", token, encode_chunk(block))
        manifest_upload = _send_half(port, "PUT", "/v1/manifests/rp-1", token, manifest)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        chunk_upload.close()
        manifest_upload.close()
    repository = tmp_path / "killed"
    assert not (repository / chunk_name(digest)).exists()
    assert list((repository / "manifests").iterdir()) == []
    with running(args, log_path=log) as process:
        wait_for_port(port, process=process)
        with DataMoverClient(f"http://127.0.0.1:{port}", token) as client:
            assert client.missing([digest]) == [digest]
            assert client.list_manifests() == []
            assert client.verify(poll=0.2)["ok"]


def test_the_client_reconnects_after_the_data_mover_restarts(tmp_path, output_dir):
    port, token, args, log = start_datamover(tmp_path, output_dir, name="restarted")
    client = DataMoverClient(f"http://127.0.0.1:{port}", token, backoff=0.5, retries=5)
    with running(args, log_path=log) as process:
        wait_for_port(port, process=process)
        first = client.info()
    restarted = threading.Event()

    def restart():
        with running(args, log_path=log) as again:
            wait_for_port(port, process=again)
            restarted.set()
            done.wait(60)

    done = threading.Event()
    thread = threading.Thread(target=restart)
    thread.start()
    try:
        assert client.info()["id"] == first["id"]  # the pooled connection died; retried
    finally:
        done.set()
        thread.join()
    client.close()
    with pytest.raises(Unreachable):
        DataMoverClient(f"http://127.0.0.1:{port}", token, retries=1, backoff=0.01).info()


def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)


    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                   .sign(key, hashes.SHA256()))
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    (tmp_path / "cert.pem").write_bytes(pem)
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return pem.decode()


def test_tls_with_the_given_certificate(tmp_path, output_dir):
    ca_pem = _self_signed(tmp_path)
    port, token, args, log = start_datamover(
        tmp_path, output_dir, "--certfile", str(tmp_path / "cert.pem"),
        "--keyfile", str(tmp_path / "key.pem"), name="tls")
    with running(args, log_path=log) as process:
        wait_for_port(port, process=process)
        url = f"https://127.0.0.1:{port}"
        with DataMoverClient(url, token, ca_pem=ca_pem) as client:
            assert client.info()["format"] == "vbr-repository"
            blocks = [random_block(), compressible_block(3)]
            assert send_disk(client, "rp-tls", "vm-1", blocks) == 2  # bodies read off the TLS socket
            manifest = client.get_manifest("rp-tls")
            assert [decode_chunk(client.get_chunk(d)) for d in manifest.disks[0].blocks] == blocks
        with DataMoverClient(url, token, retries=0) as client, pytest.raises(Unreachable, match="not trusted"):
            client.info()
        with DataMoverClient(url, "wrong", ca_pem=ca_pem) as client, pytest.raises(Unauthorized):
            client.info()


def test_errors_are_json_that_says_what_to_do(datamover):
    with datamover.client() as client:
        with pytest.raises(Rejected, match="at most"):
            client.request("POST", "/v1/chunks/missing", json.dumps({"digests": "x"}).encode())
        with pytest.raises(Rejected, match="unknown job kind"):
            client.start_job("defragment")



@pytest.mark.parametrize("init, parameters, message", [
    (True, "good", "holds an unencrypted repository"),
    (False, "good", "holds an unencrypted repository"),
    (True, "vbr-encryption-1:x", "the encryption parameters are damaged"),
])
def test_the_standalone_data_mover_refuses_a_repository_not_encrypted_as_given(tmp_path, init, parameters,
                                                                               message):
    from repositories.store import ChunkStore, EncryptionParameters, derive_key, new_kdf_parameters

    if parameters == "good":
        kdf = new_kdf_parameters()
        parameters = EncryptionParameters.for_key(derive_key("passphrase one", kdf), kdf).to_text()
    ChunkStore.create(tmp_path / "plain")
    (tmp_path / "token").write_text("t")
    result = subprocess.run(
        [sys.executable, "-m", "repositories.datamover", "--path", str(tmp_path / "plain"),
         "--token-file", str(tmp_path / "token"), "--bind", "127.0.0.1:1", "--encryption", parameters,
         *(["--init"] if init else [])], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr, result.stderr
