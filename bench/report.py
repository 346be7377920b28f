"""The figures table that `make bench` prints: one row per measured run."""

import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Row:
    name: str
    figures: dict


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def row(self, name: str, **figures) -> None:
        """Record a run; figures are printed in the order given (seconds, MB/s, ...)."""
        self.rows.append(Row(name, figures))
        print(f"  {name}: " + ", ".join(f"{k}={format_value(v)}" for k, v in figures.items()), flush=True)

    def markdown(self) -> str:
        columns: list[str] = []
        for row in self.rows:
            columns += [c for c in row.figures if c not in columns]
        lines = ["| run | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for row in self.rows:
            cells = [format_value(row.figures.get(c, "")) for c in columns]
            lines.append(f"| {row.name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@contextmanager
def stopwatch():
    """Yields a dict whose 'seconds' is set when the block ends."""
    result = {}
    start = time.perf_counter()
    try:
        yield result
    finally:
        result["seconds"] = time.perf_counter() - start


def peak_rss_mib_of_children() -> float:
    """Peak resident memory of the largest waited-for child process, in MiB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
