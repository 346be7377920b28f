"""The real ovirt-imageio daemon, run with a configuration of its own, and its control API."""

import http.client
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import processes
from .errors import DataPlaneError

# The daemon logs the address it bound; with port 0 that is the only place to learn it.
_LISTENING = re.compile(r"remote\.service listening on \('([^']*)', (\d+)")
_READY = "Ready for requests"


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over the daemon's control unix socket."""

    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class ImageioDaemon:
    """One ovirt-imageio daemon: `ovirt-imageio -c CONFDIR` with its own sockets and run dir.

    home holds conf.d/, the log and the pid file; sock_dir holds the unix sockets (kept short:
    a unix socket path may not exceed 107 bytes).
    """

    def __init__(self, home: Path, sock_dir: Path, host: str, tls: tuple[Path, Path, Path]):
        self.home = home
        self.sock_dir = sock_dir
        self.host = host
        self.key_file, self.cert_file, self.ca_file = (Path(p) for p in tls)
        self.port: int | None = None
        self._process: subprocess.Popen | None = None

    @property
    def control_socket(self) -> Path:
        return self.sock_dir / "control.sock"

    @property
    def local_socket(self) -> Path:
        return self.sock_dir / "local.sock"

    @property
    def log_path(self) -> Path:
        return self.home / "log" / "daemon.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / "daemon.pid"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 30.0) -> None:
        """Write the configuration, start the daemon and wait until it serves requests."""
        processes.stop_stale(self.pid_file, str(self.home / "conf"))
        for stale in (self.control_socket, self.local_socket):
            stale.unlink(missing_ok=True)
        conf_dir = self._write_config()
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        daemon = Path(sys.executable).with_name("ovirt-imageio")
        command = [str(daemon) if daemon.exists() else "ovirt-imageio", "-c", str(conf_dir)]
        try:
            self._process = processes.spawn(command, self.home / "log" / "stdout.log")
        except FileNotFoundError as e:
            raise DataPlaneError("ovirt-imageio is not installed (pip install ovirt-imageio)") from e
        self.pid_file.write_text(str(self._process.pid))
        try:
            self.port = self._wait_ready(offset, timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the daemon (its tickets die with it)."""
        if self._process is not None:
            processes.stop(self._process)
            self._process = None
        self.pid_file.unlink(missing_ok=True)
        self.port = None

    def add_ticket(self, ticket: dict) -> None:
        self._request("PUT", f"/tickets/{ticket['uuid']}", ticket)

    def get_ticket(self, ticket_id: str) -> dict:
        return json.loads(self._request("GET", f"/tickets/{ticket_id}"))

    def extend_ticket(self, ticket_id: str, timeout: int) -> None:
        self._request("PATCH", f"/tickets/{ticket_id}", {"timeout": timeout})

    def remove_ticket(self, ticket_id: str, timeout: float = 70.0) -> None:
        """Remove a ticket; the daemon first waits for requests in flight to finish."""
        self._request("DELETE", f"/tickets/{ticket_id}", timeout=timeout)

    def _request(self, method: str, path: str, body: dict | None = None,
                 timeout: float = 30.0) -> bytes:
        if self._process is None:
            raise DataPlaneError("the imageio daemon is not running: call DataPlane.start() first")
        con = _UnixHTTPConnection(str(self.control_socket), timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if payload else {}
            con.request(method, path, body=payload, headers=headers)
            resp = con.getresponse()
            data = resp.read()
        except OSError as e:
            raise DataPlaneError(f"imageio control {method} {path}: {e}") from e
        finally:
            con.close()
        if resp.status >= 300:
            raise DataPlaneError(
                f"imageio control {method} {path}: {resp.status} {data.decode(errors='replace')}")
        return data

    def _write_config(self) -> Path:
        conf_dir = self.home / "conf"
        (conf_dir / "conf.d").mkdir(parents=True, exist_ok=True)
        (self.home / "run").mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.sock_dir.mkdir(parents=True, exist_ok=True)
        # Values are read by the daemon's configloader; the handler args are a Python literal.
        text = f"""\
[daemon]
systemd_enable = false
drop_privileges = false
run_dir = {self.home / "run"}
poll_interval = 0.2

[tls]
enable = true
key_file = {self.key_file}
cert_file = {self.cert_file}
ca_file = {self.ca_file}

[remote]
host = {self.host}
port = 0

[local]
enable = true
socket = {self.local_socket}

[control]
transport = unix
socket = {self.control_socket}

[logger_root]
level = INFO

[handler_logfile]
args = ({str(self.log_path)!r},)
kwargs = {{"maxBytes": 20971520, "backupCount": 3}}
"""
        (conf_dir / "conf.d" / "50-simulator.conf").write_text(text)
        return conf_dir

    def _wait_ready(self, offset: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DataPlaneError(
                    f"ovirt-imageio exited with {self._process.returncode}: "
                    f"{self._log_since(offset)[-2000:]}")
            text = self._log_since(offset)
            match = _LISTENING.search(text)
            if match and _READY in text:
                return int(match.group(2))
            time.sleep(0.05)
        raise DataPlaneError(f"ovirt-imageio did not get ready within {timeout:.0f} s; "
                             f"see {self.log_path}")

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                # The log may have rotated since offset was taken: then all of it is new.
                if f.seek(0, 2) >= offset:
                    f.seek(offset)
                else:
                    f.seek(0)
                return f.read().decode(errors="replace")
        except OSError:
            return ""
