"""What the restore commands print: a progress line (a bar on a terminal, a few lines otherwise)
and the session's log as it runs."""

from __future__ import annotations

import time

from vbrsite.times import clock

MIB = 1024 * 1024


class ProgressLine:
    """Prints ``[#####.....]  42%  120 MiB/s`` in place on a terminal, every 10 % elsewhere."""

    def __init__(self, stream, label: str = "", width: int = 30):
        self.stream, self.label, self.width = stream, label, width
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.started = time.monotonic()
        self._last_step = -1
        self._last_time = 0.0

    def update(self, done: int, total: int) -> None:
        """Show ``done`` of ``total`` bytes."""
        fraction = done / total if total else 1.0
        now = time.monotonic()
        if self.tty:
            if now - self._last_time < 0.2 and done < total:
                return
            self._last_time = now
            filled = int(fraction * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r{self.label}[{bar}] {fraction:4.0%}  {self._rate(done, now)}",
                              ending="")
            self.stream.flush()
            return
        step = int(fraction * 10)
        if step != self._last_step:
            self._last_step = step
            self.stream.write(f"{self.label}{fraction:.0%}  {self._rate(done, now)}")

    def percent(self, value: float, text: str = "") -> None:
        """Show a percentage reported by someone else (a session), with a note."""
        if self.tty:
            filled = int(value / 100 * self.width)
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r{self.label}[{bar}] {value:5.1f}%  {text[:50]:<50}", ending="")
            self.stream.flush()
            return
        step = int(value // 10)
        if step != self._last_step:
            self._last_step = step
            self.stream.write(f"{self.label}{value:.0f}%  {text}")

    def done(self) -> None:
        """End the line on a terminal."""
        if self.tty:
            self.stream.write("")

    def _rate(self, done: int, now: float) -> str:
        seconds = now - self.started
        return f"{done / MIB / seconds:.0f} MiB/s" if seconds > 0.5 else ""


def wait_for_session(session, stream, poll: float = 1.0, queued_hint_after: float = 30.0) -> str:
    """Show a session's progress until it ends; its end state."""
    from jobs.choices import TERMINAL_STATES

    line = ProgressLine(stream)
    started, hinted, seen_logs = time.monotonic(), False, 0
    while True:
        session.refresh_from_db()
        logs = list(session.log_lines.all()[seen_logs:])
        if logs:
            if line.tty:
                stream.write("")
            for entry in logs:
                stream.write(f"  {clock(entry.time)} {entry.level:<7} {entry.message}")
            seen_logs += len(logs)
        if session.state in TERMINAL_STATES:
            line.done()
            return session.state
        if session.state == "pending" and not hinted and time.monotonic() - started > queued_hint_after:
            hinted = True
            stream.write("  still queued: is the control runner (manage.py qcluster) running?")
        line.percent(session.progress, session.get_state_display())
        time.sleep(poll)
