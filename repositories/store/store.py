"""A repository's chunk store: chunks, manifests and backup leases over a backend."""

import json
import os
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from repositories.store.backend import TEMPORARY_DIR, Backend, LocalBackend, ObjectInfo
from repositories.store.chunks import FLAG_AES_GCM, MAGIC, check_chunk, is_digest, verify_chunk
from repositories.store.errors import (
    ChunkError,
    Immutable,
    ManifestError,
    MissingChunks,
    NotARepository,
    NotFound,
    RepositoryKeyError,
    StoreError,
)
from repositories.store.keys import EncryptionParameters, RepositoryKey, new_kdf_parameters
from repositories.store.manifest import (
    Manifest,
    check_manifest_id,
    parse_manifest,
    serialize_manifest,
)

CONFIG_NAME = "config.json"
STORE_FORMAT = "vbr-repository"
STORE_VERSION = 1


def chunk_name(digest: str) -> str:
    """The object name of a chunk: fanned out over 256 folders by its first two characters."""
    if not is_digest(digest):
        raise ChunkError(f"bad chunk id {digest!r}: expected 64 lowercase hex characters")
    return f"chunks/{digest[:2]}/{digest}"


def manifest_name(manifest_id: str) -> str:
    return f"manifests/{check_manifest_id(manifest_id)}.json"


class ChunkStore:
    """One repository: content-addressed chunks and the manifests that reference them.

    ``key`` is optional even for an encrypted repository: without it the store
    checks chunk framing and checksums only; with it, it also checks every
    chunk's content against its name.

    ``verify_content`` (the default, and the safe choice) decompresses every
    chunk put and checks its content against its name, so a client with a bug
    can never store a chunk under a wrong name. False keeps only the framing
    and CRC check (no partial or damaged chunk is stored) and trusts the
    client's digest: about a third less CPU per chunk on the data mover.
    ``verify`` jobs and every restore still find a misnamed chunk later. The
    data mover runs with False unless started with ``--verify-content``: on a
    busy host the re-hash costs more than storing the chunk.
    """

    def __init__(self, backend: Backend, *, key: RepositoryKey | None = None,
                 immutable_days: int = 0, verify_content: bool = True):
        self.backend = backend
        self.immutable_days = immutable_days
        self.verify_content = verify_content
        try:
            self.config = json.loads(backend.read(CONFIG_NAME))
        except NotFound:
            raise NotARepository(
                "no repository here (config.json is missing): create one with add_repository"
            ) from None
        if self.config.get("format") != STORE_FORMAT or self.config.get("version") != STORE_VERSION:
            raise NotARepository("config.json is not a repository config of a known version")
        if key is not None and self.encrypted and key.check_value != self.config["key_check"]:
            raise RepositoryKeyError("the key given doesn't match this repository's key check value")
        self.key = key if self.encrypted else None
        self._summaries: dict[str, tuple[float, int, dict]] = {}

    @classmethod
    def create(cls, path: str | os.PathLike, *, key: RepositoryKey | None = None,
               kdf_parameters: dict | None = None,
               encryption: EncryptionParameters | None = None, **options) -> "ChunkStore":
        """Create a repository in an empty (or missing) folder; open it if it is one already.

        An encrypted repository is made from its key (and KDF parameters), or,
        where the key must stay away (a gateway), from its ``encryption``
        parameters alone. A repository found there already must match them.
        """
        if key is not None:
            given = EncryptionParameters.for_key(key, kdf_parameters or new_kdf_parameters())
            if encryption is not None and encryption.key_check != given.key_check:
                raise RepositoryKeyError("the key and the encryption parameters given differ")
            encryption = given
        backend = LocalBackend(path)
        if backend.exists(CONFIG_NAME):
            store = cls(backend, key=key, **options)
            if encryption is not None:
                store.check_encryption(encryption)
            return store
        root = Path(path)
        if root.exists() and any(p.name != "lock" for p in root.iterdir()):
            raise StoreError(f"{root} is not empty and holds no repository: choose an empty folder")
        backend.prepare()
        config = {"format": STORE_FORMAT, "version": STORE_VERSION, "id": str(uuid.uuid4()),
                  "created": datetime.now(UTC).isoformat(), "encrypted": encryption is not None,
                  "block_size": 4 * 1024 * 1024}
        if encryption is not None:
            config["kdf"], config["key_check"] = encryption.kdf, encryption.key_check
        backend.write(CONFIG_NAME, json.dumps(config, indent=2).encode())
        return cls(backend, key=key, **options)

    def check_encryption(self, expected: EncryptionParameters | None) -> None:
        """Refuse a repository whose encryption isn't the one expected (None: unencrypted)."""
        if expected is None:
            if self.encrypted:
                raise RepositoryKeyError(f"{self.backend} holds an encrypted repository: "
                                         "give its passphrase (or its encryption parameters)")
            return
        if not self.encrypted:
            raise RepositoryKeyError(f"{self.backend} holds an unencrypted repository: it can't be "
                                     "encrypted now; choose an empty folder")
        if self.config.get("key_check") != expected.key_check:
            raise RepositoryKeyError(f"{self.backend} holds a repository encrypted with another key: "
                                     "check the path, or give that repository's passphrase")

    @classmethod
    def open(cls, path: str | os.PathLike, **options) -> "ChunkStore":
        """Open the repository at a local path."""
        return cls(LocalBackend(path), **options)

    @property
    def encrypted(self) -> bool:
        return bool(self.config.get("encrypted"))

    def info(self) -> dict:
        """What a client needs to know before it writes (no secret in it)."""
        return {key: self.config.get(key) for key in
                ("format", "version", "id", "encrypted", "block_size", "key_check", "kdf")}

    # Chunks

    def missing(self, digests: Iterable[str]) -> list[str]:
        """The digests the store lacks, in the order given.

        Chunks found are touched: a backup that relies on an old chunk makes it
        young, so a garbage collection running meanwhile keeps it.
        """
        missing = []
        with self.backend.lock(exclusive=False):
            for digest in digests:
                if not self.backend.touch(chunk_name(digest)):
                    missing.append(digest)
        return missing

    def has_chunk(self, digest: str) -> bool:
        return self.backend.exists(chunk_name(digest))

    def put_chunk(self, digest: str, blob: bytes | memoryview) -> bool:
        """Check and store a chunk; False when it was there already."""
        name = chunk_name(digest)
        flags = blob[5] if blob[:4] == MAGIC and len(blob) > 5 else None
        if flags is not None and self.encrypted != bool(flags & FLAG_AES_GCM):
            raise ChunkError(
                "this repository is encrypted: chunks must be encrypted with its key"
                if self.encrypted else
                "this repository is not encrypted: chunks must not be encrypted"
            )
        if self.verify_content:
            verify_chunk(digest, blob, self.key)  # checks the framing and CRC too
        else:
            check_chunk(blob)
        with self.backend.lock(exclusive=False):
            if self.backend.touch(name):
                return False
            self.backend.write(name, blob, durable_name=False)
        return True

    def get_chunk(self, digest: str) -> bytes:
        """A chunk's stored bytes; NotFound when it is missing."""
        return self.backend.read(chunk_name(digest))

    def chunks(self) -> Iterable[ObjectInfo]:
        """Every chunk object with its size and time."""
        return (info for info in self.backend.list("chunks/") if is_digest(info.name[-64:]))

    # Manifests

    def put_manifest(self, data: bytes | Manifest) -> Manifest:
        """Write a manifest, after checking that every chunk it references is stored.

        The chunks are touched under the shared lock, so a garbage collection
        sweeping at this moment keeps them even if no other manifest needs them.
        """
        manifest = data if isinstance(data, Manifest) else parse_manifest(data)
        if manifest.parent is not None:
            check_manifest_id(manifest.parent)
        with self.backend.lock(exclusive=False):
            absent = sorted(d for d in manifest.digests() if not self.backend.touch(chunk_name(d)))
            if absent:
                raise MissingChunks(absent)
            # Chunk names become durable here, before the manifest that needs them.
            self.backend.flush()
            if self.immutable_days:
                until = datetime.now(UTC) + timedelta(days=self.immutable_days)
                manifest.immutable_until = max(until, manifest.immutable_until or until)
            self.backend.write(manifest_name(manifest.id), serialize_manifest(manifest))
        return manifest

    def get_manifest(self, manifest_id: str) -> Manifest:
        return parse_manifest(self.get_manifest_bytes(manifest_id))

    def get_manifest_bytes(self, manifest_id: str) -> bytes:
        try:
            return self.backend.read(manifest_name(manifest_id))
        except NotFound:
            raise NotFound(f"restore point {manifest_id} doesn't exist in this repository") from None

    def manifest_ids(self) -> list[str]:
        return sorted(info.name[len("manifests/"):-len(".json")]
                      for info in self.backend.list("manifests/") if info.name.endswith(".json"))

    def manifests(self) -> Iterable[Manifest]:
        """Every manifest, parsed (a damaged one raises ManifestError)."""
        for manifest_id in self.manifest_ids():
            try:
                yield self.get_manifest(manifest_id)
            except NotFound:
                continue  # deleted meanwhile

    def list_manifests(self) -> list[dict]:
        """Summaries of every restore point, oldest first (parsed once per file version)."""
        summaries = []
        for info in self.backend.list("manifests/"):
            if not info.name.endswith(".json"):
                continue
            cached = self._summaries.get(info.name)
            if cached is None or cached[:2] != (info.mtime, info.size):
                try:
                    summary = parse_manifest(self.backend.read(info.name)).summary()
                except (NotFound, ManifestError) as exc:
                    summary = {"id": info.name[10:-5], "error": str(exc)}
                cached = (info.mtime, info.size, summary)
                self._summaries[info.name] = cached
            summaries.append(cached[2])
        return sorted(summaries, key=lambda s: (s.get("created", ""), s["id"]))

    def delete_manifest(self, manifest_id: str, now: datetime | None = None) -> None:
        """Delete a restore point, unless it is immutable or a backup in flight builds on it.

        Its chunks stay until garbage collection finds no other manifest needs them.
        """
        manifest = self.get_manifest(manifest_id)
        now = now or datetime.now(UTC)
        until = max(manifest.created + timedelta(days=self.immutable_days),
                    manifest.immutable_until or manifest.created)
        if now < until:
            raise Immutable(
                f"restore point {manifest_id} is immutable until "
                f"{until.astimezone(UTC):%Y-%m-%d %H:%M} UTC; no one can delete it before"
            )
        for lease in self.leases():
            if manifest_id in lease.get("manifests", []):
                raise StoreError(
                    f"restore point {manifest_id} is the base of a backup in progress "
                    f"({lease.get('label') or lease['id']}); delete it after that backup ends"
                )
        self.backend.delete(manifest_name(manifest_id))

    # Leases: a backup in progress

    def open_lease(self, label: str = "", ttl: float = 24 * 3600,
                   manifests: Iterable[str] = ()) -> dict:
        """Mark a backup in progress: garbage collection keeps every chunk written since.

        ``manifests`` names restore points the backup builds on (an incremental's
        parent); they can't be deleted while the lease is open.
        """
        now = time.time()
        lease = {"id": uuid.uuid4().hex, "label": str(label)[:200], "created": now,
                 "expires": now + float(ttl),
                 "manifests": [check_manifest_id(m) for m in manifests]}
        self.backend.write(f"leases/{lease['id']}.json", json.dumps(lease).encode())
        return lease

    def close_lease(self, lease_id: str) -> None:
        if not lease_id.isalnum():
            raise StoreError(f"bad lease id {lease_id!r}")
        if not self.backend.delete(f"leases/{lease_id}.json"):
            raise NotFound(f"lease {lease_id} doesn't exist (expired or closed)")

    def leases(self, include_expired: bool = False) -> list[dict]:
        now = time.time()
        leases = []
        for info in self.backend.list("leases/"):
            try:
                lease = json.loads(self.backend.read(info.name))
            except (NotFound, ValueError):
                continue
            if include_expired or lease["expires"] > now:
                leases.append(lease)
        return leases

    # Figures

    def stats(self, capacity: int | None = None) -> dict:
        """Capacity, used and free bytes, chunk count and the data reduction ratio."""
        chunk_count = stored = 0
        for info in self.chunks():
            chunk_count += 1
            stored += info.size
        summaries = self.list_manifests()
        logical = sum(s.get("allocated", 0) for s in summaries)
        total, free = self.backend.space()
        return {
            "capacity": capacity or total, "free": free, "used": stored, "chunks": chunk_count,
            "manifests": len(summaries), "logical": logical,
            "dedup_ratio": round(logical / stored, 2) if stored else 0.0,
            "encrypted": self.encrypted,
        }

    def remove_stale_temporary(self, older_than: float) -> int:
        """Remove temporary files a crashed writer left; they are never objects."""
        cutoff = time.time() - older_than
        removed = 0
        for info in self.backend.list(f"{TEMPORARY_DIR}/"):
            if info.mtime < cutoff and self.backend.delete(info.name):
                removed += 1
        return removed

    def probe(self) -> dict:
        """Write and delete a small object: proves the storage is writable."""
        name = f"{TEMPORARY_DIR}/probe-{uuid.uuid4().hex}"
        self.backend.write(name, b"probe")
        if self.backend.read(name) != b"probe":
            raise StoreError("the probe read back differs from what was written")
        self.backend.delete(name)
        total, free = self.backend.space()
        return {"ok": True, "capacity": total, "free": free}
