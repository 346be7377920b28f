"""A small ovirt-imageio HTTP client for the disk movers (plain Python, no Django).

The imageio daemon serves one request at a time per connection, so a disk is
moved over several keep-alive connections, one per thread: each thread holds
its own ImageioConnection. TLS is verified against the manager's CA (the
daemon's certificate is signed by the engine's CA). When the daemon runs on
this very host (a worker on a hypervisor, the embedded worker beside the
simulator), the data goes over the daemon's unix socket instead, as imageio's
own client does — after a verified TLS handshake has shown that it is local.

Every request is idempotent (a ranged read, a write of the same bytes at the
same offset, a zero of the same range), so a dropped connection is simply
reopened and the request sent again, with backoff. A 403 means the ticket is
gone (expired, or the transfer was cancelled): that is never retried.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF = 0.5
_NETWORK_ERRORS = (TimeoutError, ConnectionError, http.client.HTTPException, OSError)


class ImageioError(Exception):
    """imageio refused a request or could not be reached; ``status`` is the HTTP status (0: none)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class TicketGone(ImageioError):
    """The transfer's ticket is no longer valid (403): expired, finalized or cancelled."""


class ImageioUnreachable(ImageioError):
    """No answer from imageio after every retry."""


# What this process learnt of each imageio daemon it read from (and trusted, under the same CA):
# its unix socket when it runs on this very host, else None. A daemon's place doesn't change
# between transfers; a socket that stops answering is forgotten (ImageioClient.unix_socket_failed).
_daemons: dict[tuple, str | None] = {}
_daemons_lock = threading.Lock()


class ImageioClient:
    """What every connection to one transfer URL shares: address, TLS context, retry policy."""

    def __init__(self, transfer_url: str, *, ca_pem: str | None = None, ca_file: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF, prefer_unix_socket: bool = True):
        parts = urlsplit(transfer_url)
        if parts.scheme not in ("https", "http") or not parts.hostname or "/images/" not in parts.path:
            raise ImageioError(f"bad transfer URL {without_ticket(transfer_url)!r}: expected "
                               "https://HOST:PORT/images/TICKET")
        self.url = transfer_url
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = parts.path.rstrip("/")
        self.tls: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self.tls = ssl.create_default_context(cafile=ca_file, cadata=ca_pem or None)
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        # Set when imageio runs on this very host: its unix socket then carries the data.
        self.unix_socket: str | None = None
        self._probe_lock = threading.Lock()
        self._probed = not prefer_unix_socket
        self._daemon = (self.host, self.port, ca_pem, ca_file)  # a new CA is checked anew

    def connect(self) -> ImageioConnection:
        """A new keep-alive connection (opened lazily, reopened after a drop)."""
        self._probe()
        return ImageioConnection(self)

    def _probe(self) -> None:
        """Once: when the daemon is local, move the data over its unix socket, as its own client does.

        A worker on a hypervisor host (or the embedded worker beside the
        simulator) skips TLS that way; anywhere else nothing changes.
        """
        with self._probe_lock:
            if self._probed:
                return
            self._probed = True
            with _daemons_lock:
                known = self._daemon in _daemons
                self.unix_socket = _daemons.get(self._daemon)
            if known:
                return
            connection = self._open()
            try:
                connection.request("OPTIONS", self.path)
                response = connection.getresponse()
                options = json.loads(response.read()) if response.status == 200 else {}
                sock = connection.sock
                local = sock is not None and sock.getsockname()[0] == sock.getpeername()[0]
            except (ValueError, *_NETWORK_ERRORS) as exc:
                log.debug("imageio OPTIONS failed (%s): staying on %s", exc, without_ticket(self.url))
                return
            finally:
                connection.close()
            if local and options.get("unix_socket"):
                self.unix_socket = options["unix_socket"]
                log.info("imageio is local: using its unix socket")
            with _daemons_lock:
                _daemons[self._daemon] = self.unix_socket

    def unix_socket_failed(self) -> bool:
        """The daemon's unix socket refused a connection: go over the network from now on (and
        probe again next time). True when there was a socket to give up."""
        with self._probe_lock:
            if self.unix_socket is None:
                return False
            log.info("imageio's unix socket %s refused a connection: using %s:%s", self.unix_socket,
                     self.host, self.port)
            self.unix_socket = None
        with _daemons_lock:
            _daemons.pop(self._daemon, None)
        return True

    def _open(self) -> http.client.HTTPConnection:
        if self.unix_socket is not None:
            return _UnixHTTPConnection(self.unix_socket, self.timeout)
        if self.tls is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=self.tls)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP to the imageio daemon over its local unix socket (path or abstract name)."""

    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class ImageioConnection:
    """One keep-alive connection to a transfer; use it from one thread only."""

    def __init__(self, client: ImageioClient):
        self.client = client
        self._conn: http.client.HTTPConnection | None = None
        self.retried = 0  # requests sent again after a dropped connection

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ImageioConnection:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def request(self, method: str, suffix: str = "", *, body: bytes | memoryview | None = None,
                headers: dict | None = None, expect: tuple[int, ...] = (200,)) -> bytes:
        """Send one request to the ticket's URL (+ suffix) and return the whole answer body."""
        attempt = 0
        while True:
            fresh = self._conn is None
            if fresh:
                self._conn = self.client._open()
            try:
                self._conn.request(method, self.client.path + suffix, body=body,
                                   headers=headers or {})
                response = self._conn.getresponse()
                data = response.read()
            except ssl.SSLCertVerificationError as exc:
                self.close()
                raise ImageioError(f"imageio's certificate at {self.client.host} is not trusted: "
                                   f"{exc.verify_message}; check the manager's CA certificate") from None
            except _NETWORK_ERRORS as exc:
                self.close()
                if fresh and isinstance(exc, (FileNotFoundError, ConnectionRefusedError)) \
                        and self.client.unix_socket_failed():
                    continue  # a local daemon known from an earlier transfer moved: over TCP now
                attempt = self._after_drop(exc, attempt, reused=not fresh)
                continue
            if response.will_close:
                self.close()
            if response.status not in expect:
                raise _error(response.status, data, method, without_ticket(self.client.url))
            return data

    def _after_drop(self, exc: Exception, attempt: int, reused: bool) -> int:
        """Wait before sending again; raise when out of attempts."""
        self.retried += 1
        if reused and attempt == 0 and not isinstance(exc, TimeoutError):
            # A kept-alive connection the daemon closed while idle: send again at once.
            return attempt + 1
        attempt += 1
        if attempt > self.client.retries:
            raise ImageioUnreachable(f"imageio at {self.client.host}:{self.client.port} can't be "
                                     f"reached after {attempt} attempts: {exc!r}") from None
        delay = self.client.backoff * 2 ** (attempt - 1)
        log.info("imageio connection dropped (%r); sending again in %.1f s", exc, delay)
        time.sleep(delay)
        return attempt

    # The imageio data API

    def options(self) -> dict:
        """The daemon's features for this ticket; also keeps the ticket alive."""
        return json.loads(self.request("OPTIONS"))

    def extents(self, context: str = "zero") -> list[dict]:
        """The image's extents: ``zero`` ({start, length, zero, hole}) or ``dirty`` ({..., dirty})."""
        return json.loads(self.request("GET", f"/extents?context={context}"))

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset``."""
        data = self.request("GET", headers={"Range": f"bytes={offset}-{offset + length - 1}"},
                            expect=(200, 206))
        if len(data) != length:
            raise ImageioError(f"imageio sent {len(data)} bytes at offset {offset}, "
                               f"{length} were asked")
        return data

    def write(self, offset: int, data: bytes | memoryview) -> None:
        """Write ``data`` at ``offset`` without flushing (flush() once at the end)."""
        end = offset + len(data) - 1
        self.request("PUT", "?flush=n", body=data,
                     headers={"Content-Range": f"bytes {offset}-{end}/*",
                              "Content-Length": str(len(data)),
                              "Content-Type": "application/octet-stream"})

    def zero(self, offset: int, length: int) -> None:
        """Make a range read as zeros without sending them."""
        self._patch({"op": "zero", "offset": offset, "size": length, "flush": False})

    def flush(self) -> None:
        """Make every write so far durable."""
        self._patch({"op": "flush"})

    def _patch(self, message: dict) -> None:
        self.request("PATCH", body=json.dumps(message).encode(),
                     headers={"Content-Type": "application/json"})


def without_ticket(url: str) -> str:
    """A transfer URL fit for a log line or an error: the ticket (a key to the disk) cut out."""
    head, sep, _ = url.partition("/images/")
    return f"{head}{sep}…" if sep else url


def _error(status: int, data: bytes, method: str, url: str) -> ImageioError:
    text = data[:300].decode(errors="replace").strip()
    if status == 403:
        return TicketGone(f"the transfer's ticket is no longer valid (expired, finalized or "
                          f"cancelled): {text}", status)
    return ImageioError(f"imageio answered {status} to {method} {url}: {text}", status)
