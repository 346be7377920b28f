"""deploy_worker, list_workers and runworker: what they print and how they refuse bad input."""

import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from workers.models import Worker


def test_list_workers_json_has_every_worker_and_the_embedded_one_last(make_worker):
    make_worker("alpha", max_tasks=2)
    out = StringIO()
    call_command("list_workers", "--json", stdout=out)
    records = json.loads(out.getvalue())
    assert [r["name"] for r in records] == ["alpha", "embedded"]
    alpha = records[0]
    assert alpha["state"] == "ready" and alpha["cluster"] == "Cluster1" and alpha["max_tasks"] == 2
    assert alpha["queue"] == "worker-alpha" and alpha["active_tasks"] == 0
    assert records[1]["queue"] == "embedded"
    assert records[1].keys() == alpha.keys()  # a script reads every row alike
    table = StringIO()
    call_command("list_workers", stdout=table)
    rows = {line.split()[0]: line.split() for line in table.getvalue().splitlines()[1:]}
    assert rows["alpha"][3] == "0/2"
    assert rows["embedded"][3] == "0/-"  # it has no max tasks: never "0/None"


def test_list_workers_shows_the_heartbeat_in_the_pages_time_zone_and_json_stays_utc(make_worker, settings):
    settings.TIME_ZONE = "Asia/Kolkata"  # no summer time: the expected text stays fixed
    alpha = make_worker("alpha")
    Worker.objects.filter(pk=alpha.pk).update(last_heartbeat=datetime(2025, 1, 15, 9, 30, 5, tzinfo=UTC))
    table, out = StringIO(), StringIO()
    call_command("list_workers", stdout=table)
    call_command("list_workers", "--json", stdout=out)
    row = next(line for line in table.getvalue().splitlines() if line.startswith("alpha"))
    assert row.endswith(" 2025-01-15 15:00:05+05:30")
    assert json.loads(out.getvalue())[0]["last_heartbeat"] == "2025-01-15T09:30:05+00:00"


def test_deploy_worker_names_the_known_clusters_when_the_cluster_is_unknown(inventory_manager):
    with pytest.raises(CommandError, match=r"No cluster named 'Nope' \(known: Cluster1\)"):
        call_command("deploy_worker", "w", "--cluster", "Nope")


def test_deploy_worker_reports_invalid_values(inventory_manager):
    with pytest.raises(CommandError, match="memory"):
        call_command("deploy_worker", "w", "--cluster", "Cluster1", "--memory", "10")
    assert not Worker.objects.exists()


def test_runworker_refuses_an_unknown_worker(make_worker):
    make_worker("known")
    with pytest.raises(CommandError, match=r"No worker named 'ghost' \(known: known\)"):
        call_command("runworker", "ghost")


def test_deploy_worker_refuses_a_storage_domain_outside_the_clusters_data_center(remote_cluster):
    with pytest.raises(CommandError, match=r"storage_domain: Storage domain data1 is not attached to data center "
                                           r"Remote, where cluster Remote is: .* \(usable there: remote1\)"):
        call_command("deploy_worker", "w", "--cluster", "Remote", "--storage-domain", "data1")
    assert not Worker.objects.exists()


def test_remove_worker_names_the_known_workers_when_the_name_is_unknown(make_worker):
    make_worker("known")
    with pytest.raises(CommandError, match=r"No worker named 'ghost' \(known: known\)"):
        call_command("remove_worker", "ghost")
    assert Worker.objects.filter(name="known").exists()
