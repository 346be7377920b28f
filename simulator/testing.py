"""Run the simulator for tests and demos: `running_simulator()` and its handle.

    with running_simulator(tmp_path / "sim", seed="small") as sim:
        connection = sim.connection()          # an ovirtsdk4.Connection trusting sim.ca_file
        sim.cli("guest-write", "--vm", "small-vm1", "--offset", "0", "--length", "1M")

The simulator runs as `python -m simulator serve --port 0` in a process group of its own; on
exit it is stopped with SIGTERM (it closes its transfers and stops imageio and qemu-nbd) and
anything of it still alive is killed.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USERNAME = "admin@internal"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0


@dataclass
class SimulatorHandle:
    """A running simulator: where its API is, how to trust it and log in, its state."""

    url: str
    ca_file: Path
    username: str
    password: str
    state_dir: Path
    seed: str = "small"
    delays: float | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run `python -m simulator <args> --state DIR` against this simulator."""
        return subprocess.run(
            [sys.executable, "-m", "simulator", *args, "--state", str(self.state_dir)],
            cwd=ROOT, env=_env(), capture_output=True, text=True, check=check, timeout=300,
        )

    def connection(self, **kwargs):
        """An ovirtsdk4.Connection to this simulator (the caller closes it)."""
        import ovirtsdk4

        options = {"url": self.url, "username": self.username, "password": self.password,
                   "ca_file": str(self.ca_file), "timeout": 60}
        options.update(kwargs)
        return ovirtsdk4.Connection(**options)

    def disk_image(self, disk_id: str) -> tuple[Path, str]:
        """(path, qemu format) of a disk's image as the guest sees it now."""
        out = self.cli("disk-image", "--disk", disk_id).stdout.split()
        return Path(out[0]), out[1]

    def restart(self) -> None:
        """Stop the simulator and start it again on the same state (the port changes)."""
        stop_simulator(self)
        start_simulator(self)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _code_digest() -> str:
    """A digest of the simulator's code: seeded templates are reused only by the same code."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _seed_template(seed: str, password: str) -> Path:
    """A freshly seeded state directory for (seed, code), built once and reused by copying.

    Seeding writes the disk images (the slow part of a start); tests start many simulators.
    """
    cache = Path(tempfile.gettempdir()) / "vbr-simulator-seeds"
    key = hashlib.sha256(f"{seed}:{password}:{_code_digest()}".encode()).hexdigest()[:16]
    template = cache / f"{seed.replace(':', '-')}-{key}"
    if (template / "state.json").exists():
        return template
    cache.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=cache, prefix=".building-"))
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                    "from simulator.app import build_engine; "
                    "build_engine(Path(sys.argv[1]), '127.0.0.1', sys.argv[2], sys.argv[3], 0.5)",
                    str(building), seed, password], cwd=ROOT, env=_env(), check=True,
                   capture_output=True, timeout=START_TIMEOUT)
    try:
        building.rename(template)
    except OSError:
        # Another test process built it first; theirs is as good as ours.
        shutil.rmtree(building, ignore_errors=True)
    _prune_templates(cache, keep=template)
    return template


def _prune_templates(cache: Path, keep: Path, age: float = 600.0) -> None:
    """Remove templates of older code (not touched for `age` seconds) so /tmp doesn't fill."""
    prefix = keep.name.rsplit("-", 1)[0] + "-"
    for old in cache.glob(prefix + "*"):
        if old != keep and time.time() - old.stat().st_mtime > age:
            shutil.rmtree(old, ignore_errors=True)


def _copy_seeded_state(handle: SimulatorHandle) -> None:
    """Start a fresh state directory from the seeded template (sparse copies of the images)."""
    if (handle.state_dir / "state.json").exists():
        return
    template = _seed_template(handle.seed, handle.password)
    for name in ("state.json", "ca.pem", "pki", "storage"):
        if (template / name).exists():
            subprocess.run(["cp", "-a", "--sparse=always", str(template / name),
                            str(handle.state_dir)], check=True)


def start_simulator(handle: SimulatorHandle) -> None:
    """Start `serve` for the handle's state directory and wait until it answers."""
    handle.state_dir.mkdir(parents=True, exist_ok=True)
    if handle.seed != "demo":
        _copy_seeded_state(handle)
    info_path = handle.state_dir / "server.json"
    info_path.unlink(missing_ok=True)
    args = [sys.executable, "-m", "simulator", "serve", "--state", str(handle.state_dir),
            "--port", "0", "--seed", handle.seed, "--password", handle.password]
    if handle.delays is not None:
        args += ["--delay", str(handle.delays)]
    with open(handle.state_dir / "serve.log", "ab") as log:
        handle.process = subprocess.Popen(args, cwd=ROOT, env=_env(), stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            log_text = (handle.state_dir / "serve.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the simulator exited with {handle.process.returncode}:\n"
                               f"{log_text}")
        if info_path.exists():
            info = json.loads(info_path.read_text())
            if info.get("pid") == handle.process.pid:
                handle.url, handle.ca_file = info["url"], Path(info["ca_file"])
                return
        time.sleep(0.1)
    stop_simulator(handle)
    raise TimeoutError(f"the simulator did not start within {START_TIMEOUT:.0f} s")


def stop_simulator(handle: SimulatorHandle) -> None:
    """SIGTERM the simulator's group, wait, then kill whatever of it is left."""
    process = handle.process
    if process is None:
        return
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(process.pid, signal.SIGKILL)
    process.wait(10)
    handle.process = None
    # imageio and qemu-nbd run in sessions of their own; after a clean stop none is left, after
    # a kill these are what the data plane left behind.
    for pid in leftover_processes(handle.state_dir):
        _signal_group(pid, signal.SIGKILL)


def leftover_processes(state_dir: Path) -> list[int]:
    """Pids of processes whose command line names the state directory (imageio, qemu-nbd)."""
    marker = str(Path(state_dir).resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def _signal_group(pid: int, signo: int) -> None:
    try:
        os.killpg(pid, signo)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signo)
        except (ProcessLookupError, PermissionError):
            pass


@contextmanager
def running_simulator(state_dir: Path, seed: str = "small", password: str = "secret",
                      delays: float | None = None) -> Iterator[SimulatorHandle]:
    """Run the simulator on a free port for the duration of the block.

    delays: seconds that long operations take (the server's default when None).
    """
    handle = SimulatorHandle(url="", ca_file=Path(state_dir) / "ca.pem", username=USERNAME,
                             password=password, state_dir=Path(state_dir).resolve(), seed=seed,
                             delays=delays)
    start_simulator(handle)
    try:
        yield handle
    finally:
        stop_simulator(handle)
