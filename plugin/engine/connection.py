"""One authenticated connection to one oVirt engine (a "manager").

The SDK reuses its SSO token for every call on a connection and logs in again
once when the token expires; we keep one connection per manager per piece of
work and close it (revoking the token) when done. Every HTTP request, including
the SSO login and logout the SDK makes on its own, has a timeout.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlparse

import ovirtsdk4 as sdk
import pycurl

from plugin.errors import CA_HINT, EngineError, translated

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_CONNECTIONS = 4


@dataclass(frozen=True)
class ManagerCredentials:
    """What it takes to talk to one engine: API URL, user, password and the CA to trust.

    ``ca_pem`` is the engine's CA certificate in PEM; empty means the system's
    trust store (an engine with a publicly signed certificate). The password is
    left out of the repr so it never lands in a log line or a traceback.
    """

    url: str
    username: str
    password: str = field(repr=False)
    ca_pem: str = field(default="", repr=False)

    def validate(self) -> None:
        """Raise EngineError with what to fix when the URL or CA can't be used."""
        parsed = urlparse(self.url)
        if parsed.scheme != "https" or not parsed.hostname:
            raise EngineError(
                f"The API URL {self.url!r} is not an HTTPS URL: use "
                "https://ENGINE/ovirt-engine/api."
            )
        if self.ca_pem and "-----BEGIN CERTIFICATE-----" not in self.ca_pem:
            raise EngineError(f"The CA certificate is not in PEM format. {CA_HINT}")


class _TimedConnection(sdk.Connection):
    """The SDK's connection, with a timeout on its SSO login and logout requests too.

    The SDK sets its timeout only on API requests; the requests to the SSO
    service go out with none, so an engine that accepts the TCP connection but
    never answers would hang a login forever.
    """

    def __init__(self, *args, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, **kwargs):
        super().__init__(*args, **kwargs)
        self._connect_timeout = connect_timeout

    def _get_sso_response(self, url, params=""):
        curl = pycurl.Curl()
        body, headers = io.BytesIO(), []
        try:
            curl.setopt(pycurl.URL, url)
            curl.setopt(pycurl.POST, 1)
            curl.setopt(pycurl.POSTFIELDS, urlencode(params))
            curl.setopt(pycurl.HTTPHEADER, [f"User-Agent: PythonSDK/{sdk.get_version()}",
                                            "Accept: application/json"])
            curl.setopt(pycurl.SSL_VERIFYPEER, 1)
            curl.setopt(pycurl.SSL_VERIFYHOST, 2)
            if self._ca_file is not None:
                curl.setopt(pycurl.CAINFO, self._ca_file)
            curl.setopt(pycurl.TIMEOUT_MS, int(self._timeout * 1000))
            curl.setopt(pycurl.CONNECTTIMEOUT_MS, int(self._connect_timeout * 1000))
            curl.setopt(pycurl.WRITEFUNCTION, body.write)
            curl.setopt(pycurl.HEADERFUNCTION, lambda line: _keep_last_response(headers, line))
            curl.perform()
            status = curl.getinfo(pycurl.RESPONSE_CODE)
        finally:
            curl.close()
        content_type = next((h.split(":", 1)[1].strip() for h in headers
                             if h.lower().startswith("content-type:")), "")
        if "json" not in content_type:
            raise sdk.Error(
                f"The SSO service at {url} answered HTTP {status} with content type "
                f"'{content_type}', not JSON: the response content type isn't the expected JSON",
                code=status,
            )
        return json.loads(body.getvalue().decode("utf-8"))


def _keep_last_response(headers: list[str], line: bytes) -> None:
    # A proxy in front of the engine may answer "100 Continue" or redirect
    # first; only the headers of the last response count.
    text = line.decode("iso-8859-1").strip()
    if text.startswith("HTTP/"):
        headers.clear()
    if text:
        headers.append(text)


class Engine:
    """An open, authenticated connection to one engine. Use as a context manager.

    Thread-safe in the SDK's way: calls are serialised on one libcurl handle.
    ``sdk`` is the underlying ovirtsdk4 connection, for plugin.engine modules only.
    """

    def __init__(self, credentials: ManagerCredentials, *, timeout: float = DEFAULT_TIMEOUT,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 connections: int = DEFAULT_CONNECTIONS):
        credentials.validate()
        self.url = credentials.url.rstrip("/")
        self.timeout = timeout
        self._ca_path = _write_ca_file(credentials.ca_pem) if credentials.ca_pem else None
        self._closed = False
        self._lock = threading.Lock()
        try:
            self.sdk = _TimedConnection(
                url=self.url, username=credentials.username, password=credentials.password,
                ca_file=self._ca_path, timeout=max(1, int(round(timeout))), compress=True,
                connections=connections, connect_timeout=connect_timeout,
            )
        except sdk.Error as exc:
            self._remove_ca_file()
            raise EngineError(f"The connection settings can't be used: {exc}") from exc

    @translated("logging in to the engine")
    def login(self) -> None:
        """Log in now (the SDK would otherwise do it on the first call), to fail early."""
        self.sdk.authenticate()

    def close(self) -> None:
        """Log out (revoke the token) and release the connection; never raises."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.sdk.close(logout=self.sdk._sso_token is not None)
        except (sdk.Error, pycurl.error) as exc:
            # The token expires on its own; a failed logout must not hide the
            # outcome of the work that used the connection.
            log.warning("Logout from %s failed: %s", self.url, exc)
        finally:
            self._remove_ca_file()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Engine {self.url}>"

    def _remove_ca_file(self) -> None:
        if self._ca_path:
            try:
                os.unlink(self._ca_path)
            except FileNotFoundError:
                pass
            self._ca_path = None


def connect(credentials: ManagerCredentials, *, timeout: float = DEFAULT_TIMEOUT,
            connections: int = DEFAULT_CONNECTIONS, login: bool = True) -> Engine:
    """Open a connection to the engine and (by default) log in at once.

    Raises EngineUnreachable, CertificateNotTrusted or AuthenticationFailed with
    what to fix. ``timeout`` bounds every single HTTP request in seconds.
    """
    engine = Engine(credentials, timeout=timeout, connections=connections)
    if login:
        try:
            engine.login()
        except BaseException:
            engine.close()
            raise
    return engine


def _write_ca_file(pem: str) -> str:
    # libcurl (and so the SDK) reads trust anchors only from a file; the file
    # lives as long as the connection and is readable by this user only.
    fd, path = tempfile.mkstemp(prefix="vbr-engine-ca-", suffix=".pem")
    with os.fdopen(fd, "w") as f:
        f.write(pem if pem.endswith("\n") else pem + "\n")
    return path
