"""Where a store keeps its objects: a small interface, and a local filesystem backend.

Object names are relative paths with '/' separators (``chunks/ab/ab12…``,
``manifests/rp-1.json``). A backend must make every write atomic and durable:
readers see the whole object or nothing, never a part. The local backend also
serves NFS and SMB mounts on the data mover's host. Object storage can follow
by implementing the same few methods (``touch`` becomes a copy onto itself,
``lock`` a lease object).
"""

import contextlib
import errno
import fcntl
import mmap
import os
import shutil
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from repositories.store.errors import NotFound, StoreError

TEMPORARY_DIR = "tmp"
# Objects this large (chunks) are written with O_DIRECT where the filesystem
# allows it: no copy into the page cache and no dirty pages for fsync to write
# back, which on the bench cost more CPU than compressing the chunk.
DIRECT_MIN_SIZE = 256 * 1024
DIRECT_ALIGN = 4096


@dataclass(frozen=True)
class ObjectInfo:
    """An object's name, size in bytes and modification time (epoch seconds)."""

    name: str
    size: int
    mtime: float


class Backend(ABC):
    """The storage under one repository."""

    @abstractmethod
    def write(self, name: str, data: bytes, *, durable_name: bool = True) -> None:
        """Store data under name atomically, replacing what was there.

        The content is durable before the name appears. With ``durable_name``
        false the name itself may be lost in a crash until :meth:`flush`
        (chunks: a lost name is only a chunk sent again).
        """

    @abstractmethod
    def flush(self) -> None:
        """Make every completed write durable, names included."""

    @abstractmethod
    def read(self, name: str) -> bytes:
        """The object's bytes; NotFound when it doesn't exist."""

    @abstractmethod
    def stat(self, name: str) -> ObjectInfo | None:
        """The object's size and time, or None when it doesn't exist."""

    @abstractmethod
    def touch(self, name: str) -> bool:
        """Make the object young again (garbage collection spares young objects)."""

    @abstractmethod
    def delete(self, name: str) -> bool:
        """Remove the object; False when it wasn't there."""

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose name starts with the folder ``prefix`` (e.g. ``manifests/``)."""

    @abstractmethod
    def space(self) -> tuple[int, int]:
        """Total and free bytes of the storage."""

    @abstractmethod
    def lock(self, exclusive: bool) -> contextlib.AbstractContextManager:
        """A repository-wide lock shared by all data mover processes."""

    def exists(self, name: str) -> bool:
        return self.stat(name) is not None


class LocalBackend(Backend):
    """A directory on a local filesystem (or a network mount)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.direct_io = hasattr(os, "O_DIRECT")  # cleared once the filesystem refuses it
        self._buffers = threading.local()

    def __str__(self) -> str:
        return str(self.root)

    def _path(self, name: str) -> Path:
        if name.startswith("/") or ".." in name.split("/"):
            raise StoreError(f"bad object name {name!r}")
        return self.root / name

    def write(self, name: str, data: bytes, *, durable_name: bool = True) -> None:
        # Write a temporary file on the same filesystem, flush it to disk, then
        # rename: a crash leaves either the old object or the whole new one,
        # and at worst a temporary file that garbage collection removes.
        target = self._path(name)
        temporary = self.root / TEMPORARY_DIR / f"{uuid.uuid4().hex}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            try:
                self._write_fd(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.replace(temporary, target)
            except FileNotFoundError:
                target.parent.mkdir(parents=True, exist_ok=True)
                _fsync_dir(target.parent.parent)
                os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        if durable_name:
            _fsync_dir(target.parent)

    def _write_fd(self, fd: int, data: bytes) -> None:
        """Write every byte: the aligned bulk with O_DIRECT when possible, the rest buffered."""
        view = memoryview(data)
        bulk = len(view) - len(view) % DIRECT_ALIGN
        if self.direct_io and len(view) >= DIRECT_MIN_SIZE:
            try:
                _write_direct(fd, view[:bulk], self._buffer(bulk))
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                # This filesystem doesn't take O_DIRECT (tmpfs, some network mounts).
                self.direct_io = False
                os.ftruncate(fd, 0)
                bulk = 0
            os.lseek(fd, bulk, os.SEEK_SET)
            view = view[bulk:]
        _write_all(fd, view)

    def _buffer(self, size: int) -> mmap.mmap:
        """This thread's page-aligned buffer of at least ``size`` bytes (O_DIRECT needs one)."""
        buffer = getattr(self._buffers, "buffer", None)
        if buffer is None or len(buffer) < size:
            buffer = self._buffers.buffer = mmap.mmap(-1, max(size, DIRECT_MIN_SIZE))
        return buffer

    def flush(self) -> None:
        # Another data mover process may have written the chunks, so every
        # chunk folder is synced: 257 directory fsyncs cost tens of
        # milliseconds once per manifest, instead of one per chunk (and,
        # unlike syncfs, don't wait for other programs' dirty data).
        chunks = self.root / "chunks"
        for entry in os.scandir(chunks):
            if entry.is_dir(follow_symlinks=False):
                _fsync_dir(Path(entry.path))
        _fsync_dir(chunks)

    def read(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{name} doesn't exist") from None

    def stat(self, name: str) -> ObjectInfo | None:
        try:
            st = os.stat(self._path(name))
        except FileNotFoundError:
            return None
        return ObjectInfo(name, st.st_size, st.st_mtime)

    def touch(self, name: str) -> bool:
        try:
            os.utime(self._path(name))
        except FileNotFoundError:
            return False
        return True

    def delete(self, name: str) -> bool:
        path = self._path(name)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
        return True

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return
        stack = [(base, prefix.rstrip("/"))]
        while stack:
            folder, name = stack.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    child = f"{name}/{entry.name}"
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((Path(entry.path), child))
                        continue
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue  # removed while listing
                    yield ObjectInfo(child, st.st_size, st.st_mtime)

    def space(self) -> tuple[int, int]:
        usage = shutil.disk_usage(self.root)
        return usage.total, usage.free

    @contextlib.contextmanager
    def lock(self, exclusive: bool):
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def prepare(self) -> None:
        """Create the folders of a new repository."""
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in (TEMPORARY_DIR, "manifests", "leases", "jobs"):
            (self.root / folder).mkdir(exist_ok=True)
        chunks = self.root / "chunks"
        chunks.mkdir(exist_ok=True)
        for i in range(256):
            (chunks / f"{i:02x}").mkdir(exist_ok=True)
        _fsync_dir(self.root)


def _write_direct(fd: int, bulk: memoryview, buffer: mmap.mmap) -> None:
    """Write ``bulk`` (a multiple of DIRECT_ALIGN bytes) at offset 0 with O_DIRECT, then turn it off."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT)
    try:
        aligned = memoryview(buffer)[:len(bulk)]
        try:
            aligned[:] = bulk
            _write_all(fd, aligned)
        finally:
            aligned.release()
    finally:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)


def _write_all(fd: int, view: memoryview) -> None:
    while len(view):
        view = view[os.write(fd, view):]


def _fsync_dir(path: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
