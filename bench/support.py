"""What several benchmarks start or wait for: a data mover over a new repository, a session's end."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class running_datamover:
    """``python -m repositories.datamover`` over a new repository under ``state`` (context manager).

    Inside the block: ``url``, ``token``, ``path`` (the repository) and ``process``.
    ``extra`` arguments go to the data mover (``--workers 1`` and the like).
    """

    def __init__(self, state: Path, *extra: str):
        from tests.support.processes import free_port

        self.path = state / "repository"
        self.token = secrets.token_urlsafe(16)
        (state / "token").write_text(self.token)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.args = [sys.executable, "-m", "repositories.datamover", "--path", str(self.path),
                     "--token-file", str(state / "token"), "--bind", f"127.0.0.1:{port}", "--init",
                     *extra]
        self.port, self.log = port, state / "datamover.log"

    def __enter__(self) -> running_datamover:
        from tests.support.processes import wait_for_port

        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        wait_for_port(self.port, process=self.process)
        return self

    def __exit__(self, *exc) -> None:
        from tests.support.processes import stop_process

        stop_process(self.process)


def wait_for_session(session, what: str):
    """Poll a session until it ends; its row, or RuntimeError with its log unless it succeeded."""
    while True:
        session.refresh_from_db()
        if session.is_terminal:
            break
        time.sleep(0.1)
    if session.state != "success":
        lines = "\n".join(line.message for line in session.log_lines.all())
        raise RuntimeError(f"{what} ended {session.state}:\n{lines}")
    return session


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by a process and everything under it.

    Each live process of the tree counts its own time and that of the children it
    reaped (a transfer's qemu-nbd, ended and waited for by the simulator, counts there).
    """
    tick = os.sysconf("SC_CLK_TCK")
    parents, times = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime

    def in_tree(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parents.get(pid, 0)
        return False

    return sum(ticks for pid, ticks in times.items() if in_tree(pid)) / tick
