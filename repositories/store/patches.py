"""Patched blocks: an incremental stores only the changed ranges of a block.

A guest that rewrites 64 KiB of a 4 MiB block used to cost the incremental the
whole block: read from the production storage, hashed, compressed and stored.
A block index entry may instead be a *patched block*::

    {"base": <chunk id> | None, "patches": [[offset, length, <chunk id> | None], ...]}

the block ``base`` (zeros when None), with each patch's bytes written over it
at ``offset`` within the block, in order (a later patch wins where two overlap);
a patch whose chunk id is None writes zeros. Patch chunks are ordinary chunks
(their plain size is the patch's length) and deduplicate like any other.

Reading stays bounded: a block is patched only while its patches stay few
(``MAX_PATCHES``) and cover little of it (``MAX_PATCHED_FRACTION``); past that
the incremental reads the whole block again, which folds the patches away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from repositories.store.chunks import is_digest
from repositories.store.errors import ManifestError

# A block keeps at most this many patches; one more and it is read whole.
MAX_PATCHES = 8
# Changes covering more than this share of a block read the block whole: past it,
# one read and one chunk cost less than the ranges' requests and chunks.
MAX_PATCHED_FRACTION = 0.5

Entry = str | dict | None


def is_patched(entry: Entry) -> bool:
    return isinstance(entry, dict)


def entry_digests(entry: Entry) -> Iterator[str]:
    """The chunk ids a block index entry needs (base first, then its patches')."""
    if entry is None:
        return
    if isinstance(entry, str):
        yield entry
        return
    if entry["base"] is not None:
        yield entry["base"]
    for _, _, digest in entry["patches"]:
        if digest is not None:
            yield digest


def patch_count(entry: Entry) -> int:
    return len(entry["patches"]) if is_patched(entry) else 0


def patched(previous: Entry, patches: list[tuple[int, int, str | None]]) -> Entry:
    """The entry of a block whose ``previous`` entry gets ``patches`` (sorted, not overlapping)
    written over it; earlier patches that the new ones cover whole are dropped. None when
    that leaves only zeros (zeros written over a zero block)."""
    base = previous["base"] if is_patched(previous) else previous
    merged = merged_patches(previous, patches)
    if base is None and all(digest is None for _, _, digest in merged):
        return None
    return {"base": base, "patches": merged}


def merged_patches(previous: Entry, patches: list[tuple[int, int, str | None]]) -> list[list]:
    """The patches of ``previous`` that ``patches`` don't cover whole, then ``patches``."""
    kept = previous["patches"] if is_patched(previous) else []
    kept = [old for old in kept if not any(_covers(new, old) for new in patches)]
    return [*kept, *([offset, length, digest] for offset, length, digest in patches)]


def _covers(new, old) -> bool:
    return new[0] <= old[0] and old[0] + old[1] <= new[0] + new[1]


def check_entry(entry: Entry, block_length: int, where: str) -> None:
    """ManifestError unless ``entry`` is a valid index entry of a block of ``block_length`` bytes."""
    if entry is None or is_digest(entry):
        return
    if isinstance(entry, str):
        raise ManifestError(f"{where}: bad chunk id {entry!r}")
    if not isinstance(entry, dict) or set(entry) != {"base", "patches"}:
        raise ManifestError(f"{where}: bad index entry {str(entry)[:80]!r}")
    if entry["base"] is not None and not is_digest(entry["base"]):
        raise ManifestError(f"{where}: bad chunk id {entry['base']!r}")
    patches = entry["patches"]
    if not isinstance(patches, list) or not patches:
        raise ManifestError(f"{where}: a patched block needs a list of patches")
    for patch in patches:
        if not (isinstance(patch, list) and len(patch) == 3
                and all(isinstance(n, int) and not isinstance(n, bool) for n in patch[:2])):
            raise ManifestError(f"{where}: bad patch {str(patch)[:80]!r}")
        offset, length, digest = patch
        if offset < 0 or length <= 0 or offset + length > block_length:
            raise ManifestError(f"{where}: patch [{offset}, {length}] is outside the block of "
                                f"{block_length} bytes")
        if digest is not None and not is_digest(digest):
            raise ManifestError(f"{where}: bad chunk id {digest!r}")


def compose(entry: dict, block_length: int, read: Callable[[str, int], bytes]) -> bytearray:
    """The bytes of a patched block. ``read(digest, length)`` returns a chunk's checked
    plain bytes, which must be ``length`` long (the base's: the block's length)."""
    if entry["base"] is None:
        block = bytearray(block_length)
    else:
        block = bytearray(read(entry["base"], block_length))
    for offset, length, digest in entry["patches"]:
        block[offset:offset + length] = read(digest, length) if digest is not None else bytes(length)
    return block


def read_entry(entry: Entry, block_length: int,
               read: Callable[[str, int], bytes]) -> bytes | bytearray | None:
    """A block's bytes from its index entry (None for a zero block)."""
    if entry is None:
        return None
    if isinstance(entry, str):
        return read(entry, block_length)
    return compose(entry, block_length, read)
