"""Bar charts drawn on the server as SVG geometry (no JavaScript, no chart library).

A chart is a plain object the template ``vbrsite/chart.html`` turns into an
``<svg>``: bars with their position, size, CSS class and a tooltip text, a few
horizontal grid lines with their labels, and labels under some bars. The
numbers here are SVG user units; the SVG scales to its container.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from django.template.defaultfilters import filesizeformat
from django.utils import timezone

WIDTH = 600
HEIGHT = 180
LEFT = 64  # room for the value labels of the grid lines
BOTTOM = 22  # room for the labels under the bars
TOP = 8
GAP = 0.2  # part of each slot left empty between bars


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str
    css: str = ""
    label: str = ""
    label_x: float = 0.0


@dataclass
class GridLine:
    y: float
    label: str


@dataclass
class BarChart:
    """What the template draws; ``summary`` is the chart's text alternative."""

    title: str
    summary: str
    bars: list[Bar] = field(default_factory=list)
    grid: list[GridLine] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM
    empty: bool = True


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^n at or above value (a round top for the axis)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def nice_bytes_ceiling(value: float) -> float:
    """A round top for an axis of bytes, round in the binary units filesizeformat shows."""
    unit = 1024 ** max(0, min(5, math.floor(math.log(value, 1024)))) if value >= 1 else 1
    return nice_ceiling(value / unit) * unit


def bar_chart(title: str, values: list[tuple[str, float, str, str]], unit_label, summary: str,
              label_every: int = 1, ceiling=nice_ceiling, slots: int = 0) -> BarChart:
    """A chart of ``values``: (label under the bar, value, tooltip, CSS class) each.

    ``unit_label`` formats a value for the grid lines (e.g. bytes as "1.5 GB");
    ``ceiling`` rounds the largest value up to the top of the axis; ``slots``
    is the least number of bar places, so that a few bars stay slim. The last
    bar is always labelled (the most recent one, in a time series).
    """
    chart = BarChart(title=title, summary=summary)
    if not values:
        return chart
    top = ceiling(max(v for _, v, _, _ in values))
    plot_height = chart.baseline - TOP
    slot = (WIDTH - LEFT) / max(len(values), slots)
    for fraction in (0, 0.5, 1):
        chart.grid.append(GridLine(y=round(chart.baseline - fraction * plot_height, 1),
                                   label=unit_label(top * fraction)))
    for index, (label, value, tooltip, css) in enumerate(values):
        height = plot_height * value / top
        x = LEFT + index * slot + slot * GAP / 2
        chart.bars.append(Bar(
            x=round(x, 1), y=round(chart.baseline - height, 1), width=round(slot * (1 - GAP), 1),
            height=round(height, 1), title=tooltip, css=css,
            label=label if (len(values) - 1 - index) % label_every == 0 else "",
            label_x=round(x + slot * (1 - GAP) / 2, 1)))
    chart.empty = not any(v for _, v, _, _ in values)
    return chart


def stored_per_day(per_day: dict[date, int]) -> BarChart:
    """Bytes that backup sessions stored (after deduplication and compression) each day."""
    total = sum(per_day.values())
    values = [(day.strftime("%d %b"), stored, f"{day:%a %d %b}: {filesizeformat(stored)} stored",
               "bar-stored") for day, stored in sorted(per_day.items())]
    summary = (f"{filesizeformat(total)} stored by backups in the last {len(per_day)} days"
               if total else f"Nothing stored by backups in the last {len(per_day)} days")
    return bar_chart("Bytes stored per day", values, filesizeformat, summary, label_every=2,
                     ceiling=nice_bytes_ceiling)


def _minutes(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.0f} min"


def session_durations(sessions: list[tuple]) -> BarChart:
    """How long each of the latest backup sessions took, coloured by its result.

    ``sessions``: (id, name, state, started, finished), oldest first.
    """
    values = []
    for pk, name, state, started, finished in sessions:
        seconds = max(0.0, (finished - started).total_seconds())
        when = timezone.localtime(finished)
        values.append((when.strftime("%d %b"), seconds,
                       f"Session {pk} ({name}), {when:%d %b %H:%M}: {_minutes(seconds)}, {state}",
                       f"bar-{state}"))
    if values:
        longest = max(v for _, v, _, _ in values)
        last = f"The last {len(values)} backup sessions" if len(values) > 1 else "The last backup session"
        summary = f"{last} took up to {_minutes(longest)}"
    else:
        summary = "No backup session has ended yet"
    return bar_chart("Session durations", values, _minutes, summary,
                     label_every=max(1, len(values) // 6), slots=12)
