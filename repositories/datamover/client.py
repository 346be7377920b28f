"""The data mover client: the way workers and the backup server reach a repository.

Thread-safe: a small pool of keep-alive connections is shared by the threads
that call it. Calls that fail on a dropped connection are retried with
backoff; every call is idempotent on the server side (chunks are named by
content, manifests by id), so a retry never stores anything twice or half.

    client = DataMoverClient("https://repo1:8100", token, ca_file="/etc/vbr/ca.pem")
    for digest in client.missing(digests):
        client.put_chunk(digest, encode_chunk(block, key))
    client.put_manifest(manifest)
"""

import http.client
import json
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from repositories.store import Manifest, parse_manifest, serialize_manifest

MISSING_BATCH = 1000


class DataMoverError(Exception):
    """The data mover answered with an error; ``status`` and ``code`` say which."""

    def __init__(self, message: str, status: int = 0, code: str = ""):
        super().__init__(message)
        self.status, self.code = status, code


class Unreachable(DataMoverError):
    """No connection to the data mover (after retries)."""


class Unauthorized(DataMoverError):
    """The token was refused (401)."""


class NotFound(DataMoverError):
    """No such chunk, manifest, lease or job (404)."""


class Rejected(DataMoverError):
    """The data mover refused the request as it stands (400, 403, 409, 413, 422, 507)."""


class DataMoverClient:
    """A client for one data mover (one repository)."""

    def __init__(self, url: str, token: str, ca_file: str | None = None, *,
                 ca_pem: str | None = None, timeout: float = 60.0, pool_size: int = 8, retries: int = 4,
                 backoff: float = 0.5):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"bad data mover URL {url!r}: use http(s)://host:port")
        self.url = url.rstrip("/")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path.rstrip("/")
        self._tls = None
        if parts.scheme == "https":
            # The CA that signed the data mover's certificate (a file or PEM text);
            # neither: the system's trust store.
            try:
                self._tls = ssl.create_default_context(cafile=ca_file, cadata=ca_pem or None)
            except (ssl.SSLError, ValueError, OSError) as exc:
                raise DataMoverError(f"the CA certificate for {url} can't be used ({exc}): paste the "
                                     "PEM of the CA that signed the data mover's certificate") from None
        self._headers = {"Authorization": f"Bearer {token}"}
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self._pool: queue.LifoQueue = queue.LifoQueue(maxsize=pool_size)
        self._closed = threading.Event()

    # Connections

    def _connect(self) -> http.client.HTTPConnection:
        if self._tls is not None:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                               context=self._tls)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def _checkout(self) -> tuple[http.client.HTTPConnection, bool]:
        """A connection, and whether it was used before (the server may have closed it)."""
        try:
            return self._pool.get_nowait(), True
        except queue.Empty:
            return self._connect(), False

    def _checkin(self, connection: http.client.HTTPConnection) -> None:
        if self._closed.is_set():
            connection.close()
            return
        try:
            self._pool.put_nowait(connection)
        except queue.Full:
            connection.close()

    def close(self) -> None:
        """Close every pooled connection."""
        self._closed.set()
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, method: str, path: str, body: bytes | tuple[bytes, ...] | None = None,
                content_type: str = "application/json", retry: bool = True) -> tuple[int, bytes]:
        """Send one request; retry on dropped connections; raise on error statuses."""
        headers = dict(self._headers)
        if isinstance(body, tuple):  # parts of one body: sent as they are, with their total length
            headers["Content-Length"] = str(sum(len(part) for part in body))
        if body is not None:
            headers["Content-Type"] = content_type
        attempts = self.retries + 1 if retry else 1
        attempt = 0
        while True:
            connection, reused = self._checkout()
            try:
                connection.request(method, self._prefix + path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except ssl.SSLCertVerificationError as exc:
                connection.close()
                raise Unreachable(f"the data mover's certificate at {self.url} is not trusted: "
                                  f"{exc.verify_message}; give the CA file that signed it") from None
            except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
                connection.close()
                if reused and not isinstance(exc, TimeoutError):
                    continue  # a kept-alive connection the server closed meanwhile: no delay
                attempt += 1
                if attempt >= attempts:
                    raise Unreachable(f"the data mover at {self.url} can't be reached: {exc!r}") from None
                time.sleep(self.backoff * 2 ** (attempt - 1))
                continue
            if response.will_close:
                connection.close()
            else:
                self._checkin(connection)
            if response.status >= 400:
                raise _error(response.status, data, self.url)
            return response.status, data

    def _json(self, method: str, path: str, value=None, retry: bool = True):
        body = None if value is None else json.dumps(value).encode()
        return json.loads(self.request(method, path, body, retry=retry)[1])

    # The store's interface

    def info(self) -> dict:
        return self._json("GET", "/v1/info")

    def missing(self, digests: Iterable[str]) -> list[str]:
        """The digests the repository lacks (asked in batches), in the order given."""
        digests = list(digests)
        missing = []
        for start in range(0, len(digests), MISSING_BATCH):
            batch = digests[start:start + MISSING_BATCH]
            missing += self._json("POST", "/v1/chunks/missing", {"digests": batch})["missing"]
        return missing

    def put_chunk(self, digest: str, blob: bytes | tuple[bytes, ...]) -> bool:
        """Store an encoded chunk (or its parts, sent one after the other); False when the
        repository had it already."""
        body = tuple(blob) if isinstance(blob, tuple | list) else (bytes(blob),)
        status, _ = self.request("PUT", f"/v1/chunks/{digest}", body, "application/octet-stream")
        return status == 201

    def get_chunk(self, digest: str) -> bytes:
        """An encoded chunk (decode it with store.decode_chunk)."""
        return self.request("GET", f"/v1/chunks/{digest}")[1]

    def put_manifest(self, manifest: Manifest | bytes) -> dict:
        """Write a restore point's manifest (last, after its chunks); returns its summary."""
        body = serialize_manifest(manifest) if isinstance(manifest, Manifest) else manifest
        manifest_id = manifest.id if isinstance(manifest, Manifest) else json.loads(body)["id"]
        return json.loads(self.request("PUT", f"/v1/manifests/{manifest_id}", body)[1])

    def get_manifest(self, manifest_id: str) -> Manifest:
        return parse_manifest(self.request("GET", f"/v1/manifests/{manifest_id}")[1])

    def list_manifests(self) -> list[dict]:
        """Summaries of every restore point, oldest first."""
        return self._json("GET", "/v1/manifests")["manifests"]

    def delete_manifest(self, manifest_id: str) -> None:
        self._json("DELETE", f"/v1/manifests/{manifest_id}")

    def stats(self, fresh: bool = False) -> dict:
        """capacity, free, used, chunks, manifests, logical and dedup_ratio."""
        return self._json("GET", "/v1/stats" + ("?fresh=1" if fresh else ""))

    def probe(self) -> dict:
        """Have the data mover write, read back and delete a probe object."""
        return self._json("POST", "/v1/probe", {})

    def open_lease(self, label: str = "", ttl: float = 86400,
                   manifests: Iterable[str] = ()) -> dict:
        """Mark a backup in progress (see ChunkStore.open_lease); returns the lease."""
        return self._json("POST", "/v1/leases",
                          {"label": label, "ttl": ttl, "manifests": list(manifests)})

    def close_lease(self, lease_id: str) -> None:
        self._json("DELETE", f"/v1/leases/{lease_id}")

    def start_job(self, kind: str, **options) -> dict:
        """Start a verify or gc job; returns the job (``id``, ``state``, ``progress``)."""
        return self._json("POST", "/v1/jobs", {"kind": kind, "options": options}, retry=False)

    def job(self, job_id: str) -> dict:
        return self._json("GET", f"/v1/jobs/{job_id}")

    def wait_job(self, job: dict, progress: Callable[[dict], None] | None = None,
                 poll: float = 1.0) -> dict:
        """Poll a job until it ends; returns its result, raises DataMoverError if it failed."""
        while job["state"] == "running":
            if progress:
                progress(job["progress"])
            time.sleep(poll)
            job = self.job(job["id"])
        if progress:
            progress(job["progress"])
        if job["state"] != "done":
            raise DataMoverError(f"the {job['kind']} job failed: {job.get('error')}")
        return job["result"]

    def verify(self, progress: Callable[[dict], None] | None = None, poll: float = 1.0) -> dict:
        """Verify every referenced chunk; returns the report (``ok``, ``missing``, ``corrupt``,
        ``affected_manifests``...)."""
        return self.wait_job(self.start_job("verify"), progress, poll)

    def collect_garbage(self, grace_seconds: float = 6 * 3600, dry_run: bool = False,
                        progress: Callable[[dict], None] | None = None, poll: float = 1.0) -> dict:
        """Remove chunks no restore point references (sparing young and leased ones)."""
        job = self.start_job("gc", grace_seconds=grace_seconds, dry_run=dry_run)
        return self.wait_job(job, progress, poll)


def _error(status: int, data: bytes, url: str) -> DataMoverError:
    try:
        payload = json.loads(data)
        message, code = payload.get("error", ""), payload.get("code", "")
    except (ValueError, AttributeError):
        message, code = data[:200].decode(errors="replace"), ""
    kind = {401: Unauthorized, 404: NotFound}.get(status, Rejected if status < 500 or status == 507
                                                  else DataMoverError)
    if status == 401:
        message = f"the data mover at {url} refused the token: {message}"
    return kind(message or f"HTTP {status}", status, code)
