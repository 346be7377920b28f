"""A large disk index carried from a worker to the session driver through the repository.

A worker's disk task hands its disk index back in the task's result, a database
row. A large disk's index is tens of megabytes of JSON (66 bytes a 4 MiB block,
more for patched blocks), past what a row should carry (PostgreSQL's jsonb stops
at 255 MB, a 16 TiB disk's index is more). Above ``INLINE_LIMIT`` the worker
stores the index's JSON as ordinary chunks instead (zstd-compressed, encrypted
in an encrypted repository) and the result names them; the driver reads them
back. No manifest references them: the backup's lease keeps them while the
driver needs them, garbage collection removes them afterwards.
"""

from __future__ import annotations

import json

from repositories.store.chunks import BLOCK_SIZE, block_digest, decode_named, encode_chunk
from repositories.store.errors import ManifestError

# Indexes up to this many bytes of JSON stay in the task's result (disks up to ~250 GiB).
INLINE_LIMIT = 4 * 1024 * 1024


def stash_index(mover, key, index: dict, inline_limit: int = INLINE_LIMIT) -> dict:
    """``{"index": index}`` when small; else ``{"index_chunks": [...], "index_bytes": n}``
    with the index's JSON stored as chunks through ``mover`` (put_chunk, missing)."""
    data = json.dumps(index, separators=(",", ":")).encode()
    if len(data) <= inline_limit:
        return {"index": index}
    view = memoryview(data)  # pieces without copies: a 16 TiB disk's index is ~280 MB of JSON
    pieces = [view[offset:offset + BLOCK_SIZE] for offset in range(0, len(data), BLOCK_SIZE)]
    digests = [block_digest(piece, key) for piece in pieces]
    missing = set(mover.missing(sorted(set(digests))))
    for digest, piece in zip(digests, pieces, strict=True):
        if digest in missing:
            mover.put_chunk(digest, encode_chunk(piece, key))
            missing.discard(digest)
    # "index" stays, unusable: a server older than the worker, which knows no index_chunks,
    # fails the backup on it ("invalid literal for int()") rather than take an absent index
    # for a disk of zeros.
    return {"index_chunks": digests, "index_bytes": len(data),
            "index": {"size": "stored in the repository (index_chunks): upgrade the backup server",
                      "blocks": None}}


def unstash_index(client, key, result: dict) -> dict:
    """The index a worker's result carries inline or names as chunks (get_chunk)."""
    if "index_chunks" not in result:
        return result.get("index") or {}
    data = b"".join(decode_named(client.get_chunk(digest), digest, key)
                    for digest in result["index_chunks"])
    if len(data) != result.get("index_bytes"):
        raise ManifestError(f"the disk index read back holds {len(data)} bytes, "
                            f"the worker stored {result.get('index_bytes')}")
    return json.loads(data)
