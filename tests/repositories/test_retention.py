"""The retention policy: which restore points are deleted."""

from datetime import UTC, datetime, timedelta

import pytest

from repositories.retention import RetentionPolicy, plan_retention, restore_points_to_delete

NOW = datetime(2026, 6, 15, 22, 0, tzinfo=UTC)


def daily(count: int) -> list[tuple[str, datetime]]:
    """One restore point a day at 22:00, the newest today."""
    return [(f"rp-{n}", NOW - timedelta(days=n)) for n in range(count)]


def test_keep_the_last_n_restore_points():
    assert restore_points_to_delete(daily(5), RetentionPolicy(restore_points=3), NOW) == ["rp-4", "rp-3"]


def test_keep_n_days():
    deleted = restore_points_to_delete(daily(10), RetentionPolicy(days=7), NOW)
    assert deleted == ["rp-9", "rp-8"]


def test_no_policy_deletes_nothing_and_the_newest_is_always_kept():
    assert restore_points_to_delete(daily(5), RetentionPolicy(), NOW) == []
    assert restore_points_to_delete(daily(3), RetentionPolicy(restore_points=0), NOW) == ["rp-2", "rp-1"]


def test_gfs_keeps_the_newest_of_each_week_month_and_year():
    points = daily(800)  # NOW is Monday 15 June 2026
    policy = RetentionPolicy(restore_points=7, weekly=4, monthly=3, yearly=2)
    kept = {p for p, _ in points} - set(restore_points_to_delete(points, policy, NOW))
    last_seven = {f"rp-{n}" for n in range(7)}
    times = dict(points)
    assert {times[p].date().isoformat() for p in kept - last_seven} == {
        "2026-06-07", "2026-05-31",  # Sundays ending the 2 weeks before the last 7 days
        "2026-04-30",  # May and June are covered already; April's last
        "2025-12-31",  # 2025's last
    }
    assert last_seven <= kept


def test_nothing_younger_than_the_immutability_period_is_deleted():
    policy = RetentionPolicy(restore_points=2, immutable_days=5)
    assert restore_points_to_delete(daily(8), policy, NOW) == ["rp-7", "rp-6", "rp-5"]


def test_groups_are_judged_separately():
    groups = {("vm-1", "job"): daily(3), ("vm-2", "job"): [("x-0", NOW), ("x-1", NOW - timedelta(days=9))]}
    assert sorted(plan_retention(groups, RetentionPolicy(restore_points=2), NOW)) == ["rp-2"]


def test_negative_counts_are_refused():
    with pytest.raises(ValueError, match="negative"):
        RetentionPolicy(restore_points=-1)
