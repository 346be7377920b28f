"""Deterministic disk content: where a disk holds data, and what bytes.

A seed fixes the layout (runs of data between holes) and the bytes. Data comes from two pools
made once per process: random bytes (incompressible) and log-like text (compressible, about
4:1 with zstd). Every 64 KiB of data carries a stamp of (seed, offset), so no two 4 MiB blocks
of different disks or places are equal: a deduplicating store sees realistic data, not a few
repeated blocks.
"""

import functools
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

KiB = 1024
MiB = 1024 * KiB
STAMP_EVERY = 64 * KiB
PIECE = 4 * MiB
_POOL_SIZE = 8 * MiB

# What share of the allocated space each kind of content takes.
KIND_WEIGHTS = {"text": 0.5, "random": 0.35, "zero": 0.15}


@dataclass(frozen=True)
class Run:
    """length bytes at offset holding one kind of content: "text", "random" or "zero"."""

    offset: int
    length: int
    kind: str


def layout(size: int, seed: int, allocated_fraction: float) -> list[Run]:
    """The allocated runs of a disk of size bytes, about allocated_fraction of it, 1 MiB aligned."""
    if not 0.0 <= allocated_fraction <= 1.0:
        raise ValueError(f"allocated_fraction must be within 0..1, not {allocated_fraction}")
    rng = random.Random(f"layout:{seed}")
    total = size // MiB
    target = int(total * allocated_fraction)
    if target == 0:
        return []
    free = total - target
    # Few long runs on a big disk, as a file system lays out files; at least one run.
    count = max(1, min(target, 48, free))
    data_parts = _partition(rng, target, count)
    gaps = [0, *_partition(rng, free, count)] if free else [0] * (count + 1)
    runs: list[Run] = []
    position = 0
    for index, part in enumerate(data_parts):
        position += gaps[index]
        runs.extend(_split_kinds(rng, position * MiB, part * MiB))
        position += part
    return runs


def data(kind: str, offset: int, length: int, seed: int) -> Iterator[bytes | bytearray]:
    """The bytes of a run, in pieces of at most 4 MiB; same arguments, same bytes."""
    end = offset + length
    while offset < end:
        size = min(PIECE, end - offset)
        yield _piece(kind, offset, size, seed)
        offset += size


def _piece(kind: str, offset: int, size: int, seed: int) -> bytes | bytearray:
    if kind == "zero":
        return bytes(size)
    pool = _random_pool() if kind == "random" else _text_pool()
    # A start point in the doubled pool that depends on seed and place, so pieces differ.
    start = (offset // STAMP_EVERY * 7919 + seed * 104729) % _POOL_SIZE
    buf = bytearray(memoryview(pool)[start:start + size])
    first = -offset % STAMP_EVERY
    for at in range(first, size, STAMP_EVERY):
        stamp = b"%08x:%012x\n" % (seed & 0xFFFFFFFF, offset + at)
        buf[at:at + len(stamp)] = stamp[: size - at]
    return buf


@functools.cache
def _random_pool() -> bytes:
    # SHAKE-128 is a fast deterministic byte stream (about 3x random.randbytes).
    block = hashlib.shake_128(b"random-pool").digest(_POOL_SIZE)
    return block + block


@functools.cache
def _text_pool() -> bytes:
    """Text that compresses about 3:1 with zstd, built in well under a second.

    Slabs of log lines drawn from a few thousand distinct ones (very compressible) alternate
    with slabs of letter soup (random bytes mapped to letters by frequency: about 1.7:1).
    """
    rng = random.Random("text-pool")
    words = ["backup", "restore", "vm", "disk", "checkpoint", "request", "session", "worker",
             "storage", "cluster", "host", "started", "finished", "error", "ok", "user",
             "connection", "timeout", "GET", "POST", "/api/v1/items", "status=200", "bytes"]
    r = rng.randint
    lines = [
        (f"2026-{r(1, 12):02d}-{r(1, 28):02d} {r(0, 23):02d}:{r(0, 59):02d}:{r(0, 59):02d}."
         f"{r(0, 999):03d} INFO [{rng.choice(words)}-{r(1, 16)}] "
         f"{' '.join(rng.choices(words, k=r(3, 10)))} id={r(1, 10**6)} took={r(0, 5000)}ms\n"
         ).encode()
        for _ in range(4096)
    ]
    half = _POOL_SIZE // 2
    logs = b"".join(rng.choices(lines, k=half // 60))[:half]
    letters = (b"etaoinshrdlu        cmfwypvbgkjqxz\n" * 8)[:256]
    soup = hashlib.shake_128(b"text-pool").digest(half).translate(letters)
    slab = STAMP_EVERY
    block = b"".join(source[at:at + slab] for at in range(0, half, slab)
                     for source in (logs, soup))
    return block + block


def _partition(rng: random.Random, total: int, count: int) -> list[int]:
    """total split into count positive integer parts (count <= total)."""
    if count <= 1:
        return [total]
    cuts = sorted(rng.sample(range(1, total), count - 1))
    bounds = [0, *cuts, total]
    return [b - a for a, b in zip(bounds, bounds[1:], strict=False)]


def _split_kinds(rng: random.Random, offset: int, length: int) -> list[Run]:
    runs = []
    kinds = list(KIND_WEIGHTS)
    weights = list(KIND_WEIGHTS.values())
    end = offset + length
    while offset < end:
        size = min(end - offset, rng.randint(1, 16) * MiB)
        runs.append(Run(offset, size, rng.choices(kinds, weights)[0]))
        offset += size
    return runs

