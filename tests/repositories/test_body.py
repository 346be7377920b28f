"""Request bodies under a WSGI server that isn't gunicorn (the stdlib's): read through wsgi.input."""

import http.client
import socket
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from repositories.datamover.app import DataMoverApp, DataMoverConfig
from repositories.store import ChunkStore, block_digest, encode_chunk
from tests.repositories.conftest import compressible_block

TOKEN = "wsgiref-token"


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):  # the test's output stays readable
        pass


@pytest.fixture
def served(tmp_path):
    """The data mover app under wsgiref on a free port; (port, store)."""
    ChunkStore.create(tmp_path / "repository")
    app = DataMoverApp(DataMoverConfig(path=str(tmp_path / "repository"), token=TOKEN))
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_port, ChunkStore.open(tmp_path / "repository")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _put(port: int, digest: str, body: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("PUT", f"/v1/chunks/{digest}", body=body,
                           headers={"Authorization": f"Bearer {TOKEN}",
                                    "Content-Type": "application/octet-stream"})
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_chunk_is_read_whole_through_wsgi_input(served):
    port, store = served
    block = compressible_block(11)
    chunk, digest = encode_chunk(block), block_digest(block)
    assert _put(port, digest, chunk) == 201
    assert store.get_chunk(digest) == chunk
    assert _put(port, digest, chunk) == 200  # there already


def test_a_body_cut_short_stores_nothing(served):
    port, store = served
    block = compressible_block(12)
    chunk, digest = encode_chunk(block), block_digest(block)
    head = (f"PUT /v1/chunks/{digest} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Length: {len(chunk)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + chunk[:-1000])
        sock.shutdown(socket.SHUT_WR)  # the client goes away mid-body
        answer = b""
        while part := sock.recv(65536):  # wsgiref answers and closes
            answer += part
    assert answer.split()[1] == b"400" and b"truncated" in answer
    assert store.missing([digest]) == [digest]
    assert _put(port, digest, chunk) == 201  # stored now, and only now
