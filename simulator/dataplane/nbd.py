"""qemu-nbd exports of volumes, as vdsm starts them for image transfers."""

import json
import os
import socket
import subprocess
import time
from pathlib import Path

from . import processes
from .errors import DataPlaneError

QEMU_FORMAT = {"raw": "raw", "cow": "qcow2"}


def direct_io_supported(directory: Path) -> bool:
    """True when files in directory can be opened with O_DIRECT (tmpfs can't)."""
    probe = directory / ".direct-io-probe"
    try:
        fd = os.open(probe, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    probe.unlink(missing_ok=True)
    return True


class NbdExport:
    """One qemu-nbd process serving one volume (or its whole chain) on a unix socket."""

    def __init__(self, socket_path: Path, log_path: Path, pid_file: Path):
        self.socket_path = socket_path
        self.log_path = log_path
        self.pid_file = pid_file
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The imageio ticket URL of this export."""
        return f"nbd:unix:{self.socket_path}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, volume: Path, fmt: str, *, writable: bool, whole_chain: bool = True,
              bitmap: str | None = None, timeout: float = 15.0) -> None:
        """Export volume; raw transfer format reads through the backing chain (guest view).

        fmt is the format qemu-nbd opens the file with ("raw" also exports a qcow2 file's own
        bytes, which is what a cow transfer moves).
        """
        processes.stop_stale(self.pid_file, str(self.socket_path))
        self.socket_path.unlink(missing_ok=True)
        args = ["qemu-nbd", "--persistent", "--shared=8", "--allocation-depth",
                f"--socket={self.socket_path}", *_cache_options(volume)]
        if writable:
            args += ["--discard=unmap", "--detect-zeroes=unmap"]
        else:
            args.append("--read-only")
        if bitmap:
            args.append(f"--bitmap={bitmap}")
        if fmt == "qcow2" and not whole_chain:
            # One layer only: clusters it doesn't hold read as zero, as vdsm exports a volume.
            spec = {"driver": "qcow2", "backing": None,
                    "file": {"driver": "file", "filename": str(volume)}}
            args.append("json:" + json.dumps(spec))
        else:
            args += [f"--format={fmt}", str(volume)]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._process = processes.spawn(args, self.log_path)
        self.pid_file.write_text(str(self._process.pid))
        try:
            self._wait_listening(offset, timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop qemu-nbd; it flushes the image on SIGTERM."""
        if self._process is not None:
            processes.stop(self._process)
            self._process = None
        self.pid_file.unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)

    def _wait_listening(self, offset: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DataPlaneError(f"qemu-nbd failed: {self._log_since(offset).strip()}")
            if self.socket_path.exists():
                with socket.socket(socket.AF_UNIX) as sock:
                    try:
                        sock.connect(str(self.socket_path))
                        return
                    except OSError:
                        pass
            time.sleep(0.002)  # it listens within some 10 ms: every transfer's open waits for it
        raise DataPlaneError(f"qemu-nbd did not listen on {self.socket_path} within {timeout} s")

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""


def _cache_options(volume: Path) -> list[str]:
    """vdsm runs qemu-nbd with cache=none (O_DIRECT) and native AIO; where O_DIRECT is refused,
    the page cache.

    Native AIO makes qemu-nbd take some 30 ms to exit (tearing its AIO context down), which
    every transfer's close paid, and with it every backup's finalize: io_uring does the same
    O_DIRECT I/O without that, where the kernel allows it.
    """
    if not direct_io_supported(volume.parent):
        return ["--cache=writeback", "--aio=threads"]
    return ["--cache=none", "--aio=io_uring" if _io_uring_works(volume.parent) else "--aio=native"]


_io_uring: bool | None = None


def _io_uring_works(directory: Path) -> bool:
    """Whether qemu can read with io_uring here (a kernel or a sandbox may refuse it); asked once."""
    global _io_uring
    if _io_uring is None:
        probe = directory / ".io-uring-probe"
        try:
            probe.write_bytes(bytes(4096))
            done = subprocess.run(["qemu-io", "-f", "raw", "-n", "-i", "io_uring", "-c", "read 0 4096",
                                   str(probe)], capture_output=True, timeout=30)
            _io_uring = done.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _io_uring = False
        finally:
            probe.unlink(missing_ok=True)
    return _io_uring
