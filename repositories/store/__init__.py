"""The chunk store of a backup repository (plain Python: no Django).

A disk is cut into 4 MiB blocks aligned to the disk (``BLOCK_SIZE``; the last
block may be short). Zero blocks are never stored. Every other block becomes a
chunk named by its digest, so each distinct block is stored once however many
restore points and VMs contain it. The byte layout is in FORMAT.md.

What a worker calls, per block::

    if is_zero(block):
        disk.set_block(i, None)
    else:
        digest = block_digest(block, key)        # SHA-256, or HMAC-SHA-256 with a key
        disk.set_block(i, digest)
        ... client.missing([digest, ...]) in batches, then for each missing one:
        client.put_chunk(digest, encode_chunk(block, key))   # zstd (+ AES-256-GCM)

and once every disk is done (the manifest is written last; the data mover
refuses a manifest that references a chunk it doesn't hold)::

    manifest = build_manifest(restore_point_id, vm_id, [disk, ...], vm_name=..., ovf=...,
                              key=key, parent=previous_id, figures={...})
    client.put_manifest(manifest)

An incremental restore point starts from its parent's index and replaces the
blocks that changed: ``incremental_disk(parent.disk(disk_id), size, {i: digest})``;
a block changed in a few small ranges gets a *patched* entry instead (patches.py).
Restore reads ``manifest.disks[n].blocks`` through ``patches.read_entry`` with
``decode_named(client.get_chunk(d), d, key, length)``.

Keys: ``derive_key(passphrase, kdf_parameters)`` (scrypt) gives a
``RepositoryKey``; ``unlock()`` also checks it against the repository's key
check value and says "wrong passphrase" clearly. Functions taking ``key`` accept
a RepositoryKey, its 32 raw bytes, or None for an unencrypted repository.

``ChunkStore`` is the repository itself over a ``Backend`` (``LocalBackend`` now);
``maintenance.verify`` and ``maintenance.collect_garbage`` check and clean it.
"""

from repositories.store.backend import Backend, LocalBackend
from repositories.store.chunks import (
    BLOCK_SIZE,
    MAX_CHUNK_SIZE,
    block_digest,
    check_chunk,
    decode_chunk,
    decode_named,
    encode_chunk,
    encode_chunk_parts,
    is_digest,
    is_zero,
    verify_chunk,
)
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
from repositories.store.keys import (
    EncryptionParameters,
    RepositoryKey,
    derive_key,
    new_kdf_parameters,
    unlock,
)
from repositories.store.manifest import (
    DiskIndex,
    Manifest,
    block_count,
    block_length,
    build_manifest,
    incremental_disk,
    parse_manifest,
    serialize_manifest,
)
from repositories.store.store import ChunkStore

__all__ = [
    "BLOCK_SIZE", "MAX_CHUNK_SIZE", "Backend", "ChunkError", "ChunkStore", "DiskIndex",
    "EncryptionParameters",
    "Immutable", "LocalBackend", "Manifest", "ManifestError", "MissingChunks", "NotARepository",
    "NotFound", "RepositoryKey", "RepositoryKeyError", "StoreError", "block_count",
    "block_digest", "block_length", "build_manifest", "check_chunk", "decode_chunk", "decode_named",
    "derive_key", "encode_chunk", "encode_chunk_parts", "incremental_disk", "is_digest", "is_zero",
    "new_kdf_parameters", "parse_manifest", "serialize_manifest", "unlock", "verify_chunk",
]
