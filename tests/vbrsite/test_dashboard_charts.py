"""The dashboard's SVG bar charts: round axis tops, proportional bars, the latest bar labelled."""

from datetime import UTC, date, datetime, timedelta

import pytest

from vbrsite import charts


@pytest.mark.parametrize(("value", "top"), [(0, 1), (0.7, 1), (1, 1), (1.2, 2), (2.2, 2.5), (3, 5),
                                            (7, 10), (42, 50), (180, 200), (240, 250)])
def test_the_axis_top_is_a_round_number_at_or_above_the_largest_value(value, top):
    assert charts.nice_ceiling(value) == top


def test_a_bytes_axis_is_round_in_binary_units():
    assert charts.nice_bytes_ceiling(3 * 2**30) == 5 * 2**30
    assert charts.nice_bytes_ceiling(700 * 2**20) == 1000 * 2**20


def test_bars_are_proportional_and_the_latest_is_labelled():
    days = {date(2026, 11, 1) + timedelta(days=n): n * 2**20 for n in range(5)}
    chart = charts.stored_per_day(days)
    heights = [bar.height for bar in chart.bars]
    assert heights[0] == 0 and heights[4] == pytest.approx(2 * heights[2], abs=0.2)
    assert chart.bars[-1].label == "05 Nov" and chart.bars[-2].label == ""
    assert all(bar.y + bar.height == pytest.approx(chart.baseline, abs=0.2) for bar in chart.bars)
    assert "10.0\xa0MB stored" in chart.summary


def test_durations_are_coloured_by_result_and_few_bars_stay_slim():
    start = datetime(2026, 11, 1, 22, 0, tzinfo=UTC)
    chart = charts.session_durations([(1, "nightly", "success", start, start + timedelta(minutes=10)),
                                      (2, "nightly", "failed", start, start + timedelta(seconds=30))])
    assert [bar.css for bar in chart.bars] == ["bar-success", "bar-failed"]
    assert chart.bars[0].width < (charts.WIDTH - charts.LEFT) / 10
    assert "Session 1 (nightly)" in chart.bars[0].title and "10 min" in chart.bars[0].title


def test_no_sessions_make_an_empty_chart_that_says_so():
    chart = charts.session_durations([])
    assert chart.empty and chart.bars == [] and chart.summary == "No backup session has ended yet"
