"""The HTTPS server: SSO, the API under /ovirt-engine/api and the admin endpoint.

A threaded stdlib server; TLS handshakes happen in the request threads so one slow client
can't hold up the others. Keep-alive (HTTP/1.1) because the SDK reuses its connections.
"""

import json
import logging
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from simulator import admin, faults, sso, xmlio
from simulator.engine import Engine
from simulator.errors import ApiError
from simulator.routing import Request, Router

log = logging.getLogger("simulator")

API_PREFIX = "/ovirt-engine/api"


def fault_body(reason: str, detail: str) -> bytes:
    """A `<fault>` document."""
    return xmlio.document("fault", {"detail": detail, "reason": reason})


class SimulatorServer(ThreadingHTTPServer):
    """The engine's HTTPS endpoint."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, engine: Engine, router: Router, tls: ssl.SSLContext):
        super().__init__(address, SimulatorHandler)
        self.engine = engine
        self.router = router
        self.socket = tls.wrap_socket(self.socket, server_side=True,
                                      do_handshake_on_connect=False)


class SimulatorHandler(BaseHTTPRequestHandler):
    """Dispatches one request to SSO, the API or the admin endpoint."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: with Nagle's algorithm the body
    # would wait for the client's delayed ACK, 40 ms on every answer.
    disable_nagle_algorithm = True
    server: SimulatorServer

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self):  # noqa: N802 - the stdlib's naming
        self._handle()

    def do_POST(self):  # noqa: N802
        self._handle()

    def do_PUT(self):  # noqa: N802
        self._handle()

    def do_DELETE(self):  # noqa: N802
        self._handle()

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._body()
        path = self.path
        engine = self.server.engine
        try:
            if path.startswith("/ovirt-engine/sso/oauth/token"):
                self._json(*sso.token(engine, body))
            elif path.startswith("/ovirt-engine/services/sso-logout"):
                self._json(*sso.logout(engine, body))
            elif path == API_PREFIX or path.startswith((API_PREFIX + "/", API_PREFIX + "?")):
                self._api(path[len(API_PREFIX):], body)
            elif path.startswith(admin.PREFIX):
                self._admin(path[len(admin.PREFIX):], body)
            else:
                self._send(404, b"Not found\n", "text/plain")
        except (ConnectionError, ssl.SSLError):
            self.close_connection = True

    def _api(self, raw_path: str, body: bytes) -> None:
        engine = self.server.engine
        request = Request.of(self.command, raw_path, dict(self.headers.items()), body)
        if not sso.authorized(engine, self.headers.get("Authorization")):
            self._send(401, fault_body("Unauthorized", "The token is missing or expired; log in "
                                       "again through SSO."), "application/xml")
            return
        try:
            faults.before_request(engine, request.kinds)
            answer = self.server.router.dispatch(request)
            self._send(answer.status, answer.body(), "application/xml")
        except ApiError as error:
            self._send(error.status, fault_body(error.reason, error.detail), "application/xml")
        except xmlio.BadRequest as error:
            self._send(400, fault_body("Bad Request", str(error)), "application/xml")
        except Exception as error:
            log.exception("%s %s failed", self.command, raw_path)
            self._send(500, fault_body("Internal Server Error", str(error)), "application/xml")

    def _admin(self, raw_path: str, body: bytes) -> None:
        engine = self.server.engine
        if not sso.authorized(engine, self.headers.get("Authorization")):
            self._json(401, {"error": "Authenticate as admin@internal with the simulator's "
                                      "password (HTTP basic)."})
            return
        try:
            status, answer = admin.dispatch(engine, self.command, raw_path, body)
        except ApiError as error:
            status, answer = error.status, {"error": f"{error.reason}: {error.detail}"}
        except Exception as error:
            log.exception("admin %s %s failed", self.command, raw_path)
            status, answer = 500, {"error": str(error)}
        self._json(status, answer)

    def _json(self, status: int, value) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type};charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
