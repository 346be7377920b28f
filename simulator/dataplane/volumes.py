"""Volumes: raw files and qcow2 images made, filled, written and merged with the qemu tools."""

import json
import os
import tempfile
from pathlib import Path

from . import content, processes
from .errors import DataPlaneError
from .nbd import QEMU_FORMAT, direct_io_supported

FORMATS = tuple(QEMU_FORMAT)


def qemu_format(fmt: str) -> str:
    """oVirt's disk format name ("raw", "cow") as qemu's ("raw", "qcow2")."""
    try:
        return QEMU_FORMAT[fmt]
    except KeyError:
        raise DataPlaneError(f"unknown volume format {fmt!r}: use one of {FORMATS}") from None


def create(path: Path, fmt: str, size: int | None, sparse: bool = True,
           backing: Path | None = None) -> None:
    """A new empty volume; with backing, a qcow2 overlay on it (a snapshot's new layer), of the
    backing volume's size when ``size`` is None."""
    qfmt = qemu_format(fmt)
    if backing is not None and qfmt != "qcow2":
        raise DataPlaneError("an overlay on a backing volume must be format cow")
    if path.exists():
        raise DataPlaneError(f"volume {path} exists already")
    path.parent.mkdir(parents=True, exist_ok=True)
    args = ["qemu-img", "create", "-q", "-f", qfmt]
    options = ["compat=1.1"] if qfmt == "qcow2" else []
    if not sparse:
        options.append("preallocation=falloc")
    if backing is not None:
        backing_fmt = format_of(backing)
        # Relative, as vdsm writes it, so a state directory can move.
        args += ["-b", os.path.relpath(backing, path.parent), "-F", qemu_format(backing_fmt)]
    if options:
        args += ["-o", ",".join(options)]
    processes.run([*args, str(path), *([str(size)] if size is not None else [])], f"create volume {path}")


def format_of(path: Path) -> str:
    """"cow" for a qcow2 file (its magic), else "raw": without running qemu-img."""
    try:
        with open(path, "rb") as f:
            return "cow" if f.read(4) == b"QFI\xfb" else "raw"
    except FileNotFoundError:
        raise DataPlaneError(f"volume {path} doesn't exist") from None


def seed(path: Path, fmt: str, size: int, seed_value: int, allocated_fraction: float) -> None:
    """A new volume filled with the deterministic content of seed_value (see content.py).

    Raw: written straight into a sparse file. Cow: the same raw data converted to qcow2, so only
    the data clusters are allocated. The volume appears at path only once complete.
    """
    qfmt = qemu_format(fmt)
    runs = content.layout(size, seed_value, allocated_fraction)
    path.parent.mkdir(parents=True, exist_ok=True)
    needed = sum(run.length for run in runs)
    raw = _temporary_beside(path, ".seed.raw") if qfmt == "raw" else _staging(path, needed)
    try:
        _write_raw(raw, size, runs, seed_value)
        if qfmt == "raw":
            os.replace(raw, path)
            return
        staged = _temporary_beside(path, ".seed.qcow2")
        try:
            processes.run(["qemu-img", "convert", "-q", "-W", "-m", "4", "-f", "raw", "-O", "qcow2",
                           "-o", "compat=1.1", str(raw), str(staged)], f"seed volume {path}")
            os.replace(staged, path)
        finally:
            staged.unlink(missing_ok=True)
    finally:
        raw.unlink(missing_ok=True)


def guest_write(path: Path, fmt: str, offset: int, length: int, seed_value: int) -> None:
    """Write deterministic data through qemu, as the guest's qemu would (image locks apply)."""
    if offset < 0 or length <= 0:
        raise DataPlaneError(f"guest write needs offset >= 0 and length > 0, not {offset}, {length}")
    size = info(path)["virtual_size"]
    if offset + length > size:
        raise DataPlaneError(f"guest write {offset}+{length} ends beyond the disk's {size} bytes")
    source = _temporary_beside(path, ".guest-write")
    try:
        with open(source, "wb") as f:
            for piece in content.data("random", offset, length, seed_value):
                f.write(piece)
        # cache=none where the filesystem allows, as a VM's qemu writes (vdsm's default): through
        # the page cache, the next qemu-img that opens the volume (a backup adding its checkpoint's
        # bitmap) would pay for flushing the guest's writes.
        nocache = ["-n"] if direct_io_supported(path.parent) else []
        processes.run(["qemu-io", "-f", qemu_format(fmt), *nocache, "-c",
                       f"write -q -s {source} {offset} {length}", str(path)],
                      f"guest write into {path}")
    finally:
        source.unlink(missing_ok=True)


def info(path: Path) -> dict:
    """{"virtual_size", "actual_size", "format", "backing"} of a volume (readable while in use)."""
    out = processes.run(["qemu-img", "info", "-U", "--output=json", str(path)],
                        f"read volume {path}")
    raw = json.loads(out)
    fmt = {"raw": "raw", "qcow2": "cow"}.get(raw["format"])
    if fmt is None:
        raise DataPlaneError(f"volume {path} has format {raw['format']}, not raw or qcow2")
    backing = raw.get("full-backing-filename")
    return {"virtual_size": raw["virtual-size"], "actual_size": raw.get("actual-size", 0),
            "format": fmt, "backing": Path(os.path.normpath(backing)) if backing else None,
            "qcow2": raw.get("format-specific", {}).get("data", {})}


def commit(top: Path, base: Path) -> None:
    """Merge top's data down into base (a snapshot's removal); top is left empty, not deleted.

    Bitmaps of base record the merged clusters as written, as they would in a live merge.
    """
    processes.run(["qemu-img", "commit", "-q", "-b", str(base), str(top)],
                  f"commit {top} into {base}")


def rebase(path: Path, backing: Path) -> None:
    """Point path's backing at another volume holding the same data (after a merge)."""
    backing_fmt = qemu_format(info(backing)["format"])
    processes.run(["qemu-img", "rebase", "-q", "-u", "-b", os.path.relpath(backing, path.parent),
                   "-F", backing_fmt, str(path)], f"rebase {path} onto {backing}")


def delete(path: Path) -> None:
    """Remove the volume's file; a missing file is not an error."""
    path.unlink(missing_ok=True)


def _write_raw(raw: Path, size: int, runs: list[content.Run], seed_value: int) -> None:
    fd = os.open(raw, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)
        for run in runs:
            position = run.offset
            for piece in content.data(run.kind, run.offset, run.length, seed_value):
                os.pwrite(fd, piece, position)
                position += len(piece)
    finally:
        os.close(fd)


def _staging(path: Path, needed: int) -> Path:
    """A temporary raw file for cow seeding: in memory (/dev/shm) when it has room, as
    only the qcow2 needs to reach the disk."""
    shm = Path("/dev/shm")
    try:
        stats = os.statvfs(shm)
        if stats.f_bavail * stats.f_frsize > 2 * needed + 256 * content.MiB:
            fd, name = tempfile.mkstemp(prefix=f"vbr-seed-{path.name}.", suffix=".raw", dir=shm)
            os.close(fd)
            return Path(name)
    except OSError:
        pass
    return _temporary_beside(path, ".seed.raw")


def _temporary_beside(path: Path, suffix: str) -> Path:
    # Beside the target, so the final rename stays on one file system.
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(name)
