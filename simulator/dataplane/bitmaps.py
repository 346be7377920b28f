"""Checkpoints as qemu persistent dirty bitmaps in qcow2 volumes.

A bitmap added with `qemu-img bitmap --add` is enabled: every later write through qemu (the
guest's writes, a commit of an overlay) marks its 64 KiB clusters dirty. A host crash leaves
the bitmaps of an open image flagged "in-use", which qemu then refuses as inconsistent;
invalidate() sets that flag on one bitmap in the image's bitmap directory.
"""

import struct
from pathlib import Path

from . import processes, volumes
from .errors import DataPlaneError

_BITMAPS_EXTENSION = 0x23852875
_IN_USE = 1


def add(volume: Path, name: str) -> None:
    """A new enabled persistent bitmap; raw volumes can't hold one.

    The volume is looked at only when qemu-img refuses (one tool run, not three, for each
    checkpoint a backup makes), to say why in the simulator's words.
    """
    error = _bitmap_command(volume, "--add", name, f"add bitmap {name} to {volume}")
    if error is not None and _holds(volume, name):
        raise DataPlaneError(f"bitmap {name!r} exists already in {volume}") from None
    if error is not None:
        raise error


def remove(volume: Path, name: str) -> None:
    """Remove the bitmap (also an inconsistent one); a missing bitmap is not an error."""
    error = _bitmap_command(volume, "--remove", name, f"remove bitmap {name} from {volume}")
    if error is not None and _holds(volume, name):
        raise error


def _bitmap_command(volume: Path, option: str, name: str, what: str) -> DataPlaneError | None:
    """Run ``qemu-img bitmap OPTION VOLUME NAME``; its error, or None when it worked."""
    try:
        processes.run(["qemu-img", "bitmap", option, str(volume), name], what)
    except DataPlaneError as exc:
        return exc
    return None


def _holds(volume: Path, name: str) -> bool:
    """Whether the volume has the bitmap; DataPlaneError for a raw volume (it holds none)."""
    found = volumes.info(volume)
    _require_cow(volume, found)
    return any(b["name"] == name for b in from_info(found))


def list_(volume: Path) -> list[dict]:
    """[{"name", "granularity", "consistent"}] of a volume's bitmaps; none for a raw volume."""
    return from_info(volumes.info(volume))


def from_info(found: dict) -> list[dict]:
    """The bitmaps of a volume, from its volumes.info()."""
    if found["format"] != "cow":
        return []
    return [{"name": b["name"], "granularity": b["granularity"],
             "consistent": "in-use" not in b["flags"]}
            for b in found["qcow2"].get("bitmaps", [])]


def merge_into(target: Path, name: str, sources: list[tuple[Path, str]]) -> None:
    """A new disabled bitmap name in target holding the union of the (volume, bitmap) sources,
    volumes of target's own backing chain (target itself included)."""
    processes.run(["qemu-img", "bitmap", "--add", "--disable", str(target), name],
                  f"add bitmap {name} to {target}")
    for source, source_name in sources:
        # A bitmap of target itself is named without -b: qemu-img would open target twice.
        origin = [] if source == target else [
            "-b", str(source), "-F", volumes.qemu_format(volumes.info(source)["format"])]
        processes.run(["qemu-img", "bitmap", "--merge", source_name, *origin, str(target), name],
                      f"merge bitmap {source_name} of {source}")


def invalidate(volume: Path, name: str, how: str = "inconsistent") -> None:
    """Break a checkpoint's bitmap as a host crash does.

    how="inconsistent" flags it in-use (qemu then refuses to export it); how="removed" deletes it.
    The volume must not be open in any process.
    """
    if how == "removed":
        remove(volume, name)
        return
    if how != "inconsistent":
        raise DataPlaneError(f"invalidate how={how!r}: use 'inconsistent' or 'removed'")
    _require_cow(volume)
    with open(volume, "r+b") as image:
        for offset, entry_name in _directory_entries(image):
            if entry_name == name:
                image.seek(offset + 12)
                (flags,) = struct.unpack(">I", image.read(4))
                image.seek(offset + 12)
                image.write(struct.pack(">I", flags | _IN_USE))
                return
    raise DataPlaneError(f"bitmap {name!r} does not exist in {volume}")


def _directory_entries(image) -> list[tuple[int, str]]:
    """(file offset, name) of each entry in a qcow2 v3 image's bitmap directory."""
    header = image.read(104)
    if header[:4] != b"QFI\xfb" or struct.unpack(">I", header[4:8])[0] < 3:
        raise DataPlaneError("not a qcow2 version 3 image")
    position = struct.unpack(">I", header[100:104])[0]
    while True:
        image.seek(position)
        kind, length = struct.unpack(">II", image.read(8))
        if kind == 0:
            return []
        if kind == _BITMAPS_EXTENSION:
            image.seek(position + 8)
            _count, _reserved, size, directory = struct.unpack(">IIQQ", image.read(24))
            return _parse_directory(image, directory, size)
        position += 8 + (length + 7) // 8 * 8


def _parse_directory(image, directory: int, size: int) -> list[tuple[int, str]]:
    image.seek(directory)
    raw = image.read(size)
    entries = []
    at = 0
    while at < size:
        _table, _table_size, _flags, _type, _bits, name_size, extra = struct.unpack(
            ">QIIBBHI", raw[at:at + 24])
        name = raw[at + 24 + extra: at + 24 + extra + name_size].decode()
        entries.append((directory + at, name))
        at += (24 + extra + name_size + 7) // 8 * 8
    return entries


def _require_cow(volume: Path, found: dict | None = None) -> None:
    if (found or volumes.info(volume))["format"] != "cow":
        raise DataPlaneError(f"{volume} is raw: raw volumes have no bitmaps (always backed up full)")
