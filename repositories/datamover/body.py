"""Reading a request body of known length: straight from gunicorn's socket when it can.

Through ``wsgi.input``, gunicorn copies a 4 MiB chunk six times or so on its way
in (each recv into a BytesIO, out of it, into the body's own BytesIO, out again,
sliced): a third of the data mover's CPU on a backup went to memmove. Reading
the socket directly into one buffer copies it once. That needs four things of
gunicorn's request objects (the socket in ``gunicorn.socket``, the body's
length reader, the bytes already read past the headers, and the reader's
remaining length, set to zero so gunicorn knows the body was consumed);
where any of them isn't as expected, the body is read through ``wsgi.input``
as before, and the first such request says so in the log.
"""

from __future__ import annotations

import io
import logging
import threading

log = logging.getLogger("repositories.datamover")

RECV_STEP = 1024 * 1024

_said = threading.Event()
_buffers = threading.local()


class BodyTruncated(Exception):
    """The client went away before sending the whole body; ``received`` bytes came."""

    def __init__(self, received: int):
        super().__init__(received)
        self.received = received


def read_body(environ, length: int, *, reuse: bool = False) -> bytes | bytearray | memoryview:
    """The ``length`` bytes of the body; BodyTruncated if the client sent fewer.

    ``reuse``: read into this thread's own buffer (no allocation and zero-filling of
    4 MiB per chunk) and return a view of it, valid until this thread's next request:
    for bodies the handler is done with when it answers.
    """
    direct = _direct_parts(environ, length)
    if direct is None:
        _say_once(False)
        return _through_wsgi_input(environ["wsgi.input"], length)
    _say_once(True)
    sock, reader, unreader = direct
    out = _thread_buffer(length) if reuse else bytearray(length)
    _from_socket(sock, reader, unreader, memoryview(out)[:length])
    return memoryview(out)[:length] if reuse else out


def _thread_buffer(size: int) -> bytearray:
    buffer = getattr(_buffers, "buffer", None)
    if buffer is None or len(buffer) < size:
        buffer = _buffers.buffer = bytearray(size)
    return buffer


def _direct_parts(environ, length: int):
    """(socket, length reader, unreader) when gunicorn's objects are as expected, else None."""
    sock = environ.get("gunicorn.socket")
    body = environ.get("wsgi.input")
    reader = getattr(body, "reader", None)
    unreader = getattr(reader, "unreader", None)
    body_buffer = getattr(body, "buf", None)
    if (sock is None or not hasattr(sock, "recv_into") or type(reader).__name__ != "LengthReader"
            or getattr(reader, "length", None) != length
            or not isinstance(getattr(unreader, "buf", None), io.BytesIO) or not hasattr(unreader, "unread")
            or not isinstance(body_buffer, io.BytesIO) or body_buffer.tell() != 0):
        return None
    return sock, reader, unreader


def _from_socket(sock, reader, unreader, view: memoryview) -> None:
    length = len(view)
    buffered = unreader.buf.getvalue()  # what gunicorn read past the headers
    unreader.buf = io.BytesIO()
    if len(buffered) > length:  # the next request's first bytes, pipelined: give them back
        unreader.unread(buffered[length:])
        buffered = buffered[:length]
    view[:len(buffered)] = buffered
    received = len(buffered)
    # From here on the body is ours: gunicorn must not look for the rest of it.
    reader.length = 0
    while received < length:
        count = sock.recv_into(view[received:], min(length - received, RECV_STEP))
        if count == 0:
            raise BodyTruncated(received)
        received += count


def _through_wsgi_input(stream, length: int) -> bytes:
    parts, remaining = [], length
    while remaining:
        part = stream.read(remaining)
        if not part:
            raise BodyTruncated(length - remaining)
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def _say_once(direct: bool) -> None:
    if _said.is_set():
        return
    _said.set()
    if direct:
        log.info("request bodies are read straight from the socket (one copy)")
    else:
        log.warning("request bodies go through wsgi.input: this server's request objects are not "
                    "gunicorn's as expected (slower, same result)")
