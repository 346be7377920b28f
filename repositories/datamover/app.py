"""The data mover: an HTTP (WSGI) service over one repository's chunk store.

Every call needs ``Authorization: Bearer <token>``. JSON in and out, except
chunk bodies (``application/octet-stream``, the stored chunk form). Errors are
``{"error": "<what to do>", "code": "<word>"}`` with a fitting status.

=========================================  ==========================================
``GET    /v1/info``                        repository id, encryption, block size
``POST   /v1/chunks/missing``              ``{"digests": [...]}`` → ``{"missing": [...]}``
``PUT    /v1/chunks/<digest>``             store a chunk (checked) → 201, or 200 if present
``GET    /v1/chunks/<digest>``             the chunk
``GET    /v1/manifests``                   summaries of every restore point
``PUT    /v1/manifests/<id>``              write a manifest (409 if chunks are missing)
``GET    /v1/manifests/<id>``              the manifest
``DELETE /v1/manifests/<id>``              delete (403 while immutable, 409 while leased)
``GET    /v1/stats``                       capacity, used, chunks, dedup ratio
``POST   /v1/probe``                       write, read and delete a probe object
``GET|POST /v1/leases``, ``DELETE /v1/leases/<id>``  backups in progress
``POST   /v1/jobs``                        ``{"kind": "verify"|"gc", ...}`` → 202 job
``GET    /v1/jobs/<id>``                   job state, progress and result
=========================================  ==========================================
"""

import hashlib
import hmac
import json
import logging
import re
import time
from dataclasses import dataclass

from repositories.datamover import jobs
from repositories.datamover.body import BodyTruncated, read_body
from repositories.store import (
    MAX_CHUNK_SIZE,
    ChunkError,
    ChunkStore,
    Immutable,
    ManifestError,
    MissingChunks,
    NotFound,
    RepositoryKey,
    StoreError,
)
from vbrsite.heap import keep_block_buffers

log = logging.getLogger("repositories.datamover")
MAX_JSON_BODY = 64 * 1024 * 1024  # requests other than manifests (a missing batch is < 1 MiB)
# A manifest holds about 67 bytes per stored 4 MiB block: 1 GiB is some 60 TiB of data
# in one VM (a 4 TiB VM needs 70 MB; 64 MiB refused VMs of more than 3.8 TiB of data).
MAX_MANIFEST_BODY = 1024 * 1024 * 1024
MAX_MISSING_BATCH = 10000
STATS_CACHE_SECONDS = 30


@dataclass
class DataMoverConfig:
    """What a data mover serves and how it authenticates."""

    path: str
    token: str
    key: RepositoryKey | None = None
    immutable_days: int = 0
    capacity: int | None = None
    # False (the default) trusts the workers' chunk names, framing and CRC still checked:
    # content verification costs the data mover more CPU than storing (see ChunkStore).
    verify_content: bool = False


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: str = "error"):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
               400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
               405: "Method Not Allowed", 409: "Conflict", 411: "Length Required",
               413: "Content Too Large", 422: "Unprocessable Content",
               500: "Internal Server Error", 507: "Insufficient Storage"}


class DataMoverApp:
    """The WSGI application."""

    def __init__(self, config: DataMoverConfig):
        keep_block_buffers()  # request bodies are up to 4 MiB each
        self.config = config
        self.store = ChunkStore.open(config.path, key=config.key,
                                     immutable_days=config.immutable_days,
                                     verify_content=config.verify_content)
        self._token_digest = hashlib.sha256(config.token.encode()).digest()
        self._stats: tuple[float, dict] | None = None
        self.routes = [
            ("GET", r"/v1/info", self.info),
            ("POST", r"/v1/chunks/missing", self.missing),
            ("PUT", r"/v1/chunks/(?P<digest>[0-9a-f]{64})", self.put_chunk),
            ("GET", r"/v1/chunks/(?P<digest>[0-9a-f]{64})", self.get_chunk),
            ("GET", r"/v1/manifests", self.list_manifests),
            ("PUT", r"/v1/manifests/(?P<mid>[^/]+)", self.put_manifest),
            ("GET", r"/v1/manifests/(?P<mid>[^/]+)", self.get_manifest),
            ("DELETE", r"/v1/manifests/(?P<mid>[^/]+)", self.delete_manifest),
            ("GET", r"/v1/stats", self.stats),
            ("POST", r"/v1/probe", self.probe),
            ("GET", r"/v1/leases", self.list_leases),
            ("POST", r"/v1/leases", self.open_lease),
            ("DELETE", r"/v1/leases/(?P<lease_id>[0-9a-f]+)", self.close_lease),
            ("POST", r"/v1/jobs", self.start_job),
            ("GET", r"/v1/jobs/(?P<job_id>[0-9a-f]+)", self.get_job),
        ]
        self.routes = [(m, re.compile(p + "$"), h) for m, p, h in self.routes]

    def __call__(self, environ, start_response):
        try:
            self._authenticate(environ)
            handler, params = self._route(environ)
            status, body, content_type = handler(environ, **params)
        except HttpError as exc:
            status, body, content_type = exc.status, _json({"error": exc.message, "code": exc.code}), "application/json"
        except Exception:
            log.exception("data mover request failed")
            status, body = 500, _json({"error": "internal error: see the data mover's log",
                                       "code": "internal"})
            content_type = "application/json"
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if status == 401:
            headers.append(("WWW-Authenticate", 'Bearer realm="data mover"'))
        start_response(f"{status} {STATUS_TEXT.get(status, '')}", headers)
        return [body]

    def _authenticate(self, environ) -> None:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        given = hashlib.sha256(token.strip().encode()).digest()
        # Compare digests in constant time: the token's length leaks nothing either.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, self._token_digest):
            raise HttpError(401, "missing or wrong bearer token: use the repository's data mover token",
                            "unauthorized")

    def _route(self, environ):
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        allowed = False
        for route_method, pattern, handler in self.routes:
            match = pattern.match(path)
            if match:
                allowed = True
                if route_method == method or (method == "HEAD" and route_method == "GET"):
                    return handler, match.groupdict()
        if allowed:
            raise HttpError(405, f"{method} is not allowed on {path}", "method")
        raise HttpError(404, f"no such endpoint {path}", "endpoint")

    # Handlers return (status, body bytes, content type).

    def info(self, environ):
        return 200, _json(self.store.info()), "application/json"

    def missing(self, environ):
        digests = _read_json(environ).get("digests")
        if not isinstance(digests, list) or len(digests) > MAX_MISSING_BATCH:
            raise HttpError(400, f"send {{\"digests\": [...]}} with at most {MAX_MISSING_BATCH} digests",
                            "bad-request")
        with _store_errors():
            return 200, _json({"missing": self.store.missing(digests)}), "application/json"

    def put_chunk(self, environ, digest):
        blob = _read_body(environ, MAX_CHUNK_SIZE, reuse=True)  # stored before the answer
        with _store_errors():
            created = self.store.put_chunk(digest, blob)
        return (201 if created else 200), _json({"created": created}), "application/json"

    def get_chunk(self, environ, digest):
        with _store_errors():
            return 200, self.store.get_chunk(digest), "application/octet-stream"

    def list_manifests(self, environ):
        return 200, _json({"manifests": self.store.list_manifests()}), "application/json"

    def put_manifest(self, environ, mid):
        body = _read_body(environ, MAX_MANIFEST_BODY)
        with _store_errors():
            manifest = self.store.put_manifest(body) if _id_of(body) == mid else None
        if manifest is None:
            raise HttpError(400, f"the manifest's id doesn't match the URL ({mid})", "bad-request")
        self._stats = None
        return 201, _json(manifest.summary()), "application/json"

    def get_manifest(self, environ, mid):
        with _store_errors():
            return 200, self.store.get_manifest_bytes(mid), "application/json"

    def delete_manifest(self, environ, mid):
        with _store_errors():
            self.store.delete_manifest(mid)
        self._stats = None
        return 200, _json({"deleted": mid}), "application/json"

    def stats(self, environ):
        fresh = "fresh" in environ.get("QUERY_STRING", "")
        if fresh or self._stats is None or time.monotonic() - self._stats[0] > STATS_CACHE_SECONDS:
            self._stats = (time.monotonic(), self.store.stats(self.config.capacity))
        return 200, _json(self._stats[1]), "application/json"

    def probe(self, environ):
        try:
            return 200, _json(self.store.probe()), "application/json"
        except OSError as exc:
            raise HttpError(507, f"the repository at {self.config.path} can't be written: {exc}",
                            "storage") from None

    def list_leases(self, environ):
        return 200, _json({"leases": self.store.leases()}), "application/json"

    def open_lease(self, environ):
        request = _read_json(environ)
        with _store_errors():
            lease = self.store.open_lease(request.get("label", ""), float(request.get("ttl", 86400)),
                                          request.get("manifests", []))
        return 201, _json(lease), "application/json"

    def close_lease(self, environ, lease_id):
        with _store_errors():
            self.store.close_lease(lease_id)
        return 200, _json({"closed": lease_id}), "application/json"

    def start_job(self, environ):
        request = _read_json(environ)
        with _store_errors():
            job = jobs.start_job(self.store, request.get("kind"), request.get("options") or {})
        return 202, _json(job), "application/json"

    def get_job(self, environ, job_id):
        with _store_errors():
            return 200, _json(jobs.read_job(self.store, job_id)), "application/json"


class _store_errors:
    """Turn store exceptions into HTTP errors that say what to do."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or not isinstance(exc, StoreError | ValueError):
            return False
        if isinstance(exc, MissingChunks):
            raise HttpError(409, str(exc), "missing-chunks") from exc
        status, code = {NotFound: (404, "not-found"), Immutable: (403, "immutable"),
                        ChunkError: (422, "bad-chunk"), ManifestError: (422, "bad-manifest"),
                        }.get(type(exc), (409, "conflict") if isinstance(exc, StoreError)
                              else (400, "bad-request"))
        raise HttpError(status, str(exc), code) from exc


def _json(value) -> bytes:
    return json.dumps(value).encode()


def _id_of(body: bytes) -> str | None:
    try:
        return json.loads(body).get("id")
    except (ValueError, AttributeError):
        raise HttpError(400, "the manifest is not JSON", "bad-request") from None


def _read_body(environ, limit: int, *, reuse: bool = False) -> bytes | bytearray | memoryview:
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        raise HttpError(411, "send a Content-Length header", "length") from None
    if length > limit:
        raise HttpError(413, f"the body is {length} bytes, more than {limit}", "too-large")
    try:
        return read_body(environ, length, reuse=reuse)
    except BodyTruncated as exc:
        # The client went away mid-body: nothing is stored.
        raise HttpError(400, f"the body ended after {exc.received} of {length} bytes", "truncated") from None


def _read_json(environ) -> dict:
    body = _read_body(environ, MAX_JSON_BODY)
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise HttpError(400, "the body is not JSON", "bad-request") from None
    if not isinstance(value, dict):
        raise HttpError(400, "the body must be a JSON object", "bad-request")
    return value
