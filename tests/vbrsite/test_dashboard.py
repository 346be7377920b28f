"""The dashboard shows protection, the last day's sessions, running sessions, repositories,
workers, reconcile and the history charts, from the records of the other apps."""

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from jobs.models import ReconcileAction, Session
from tests.jobs import factories
from vbrsite import dashboard

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, django_user_model):
    user = django_user_model.objects.create_user("olga", password="pw-for-tests")
    user.groups.add(Group.objects.get(name="Operator"))
    client.force_login(user)
    return user


def ended_session(name, state, *, minutes_ago, seconds, stored=0):
    finished = timezone.now() - timedelta(minutes=minutes_ago)
    return Session.objects.create(name=name, state=state, created=finished - timedelta(seconds=seconds),
                                  started=finished - timedelta(seconds=seconds), finished=finished,
                                  bytes_stored=stored)


def test_an_empty_installation_says_what_to_do_first(client, operator):
    page = client.get(reverse("dashboard")).content.decode()
    assert "No VMs in the inventory yet" in page
    assert "No repository yet" in page
    assert "Nothing is running" in page
    assert "No backup session has ended yet" in page


def test_it_counts_protected_and_unprotected_vms(client, operator):
    _, _, vms = factories.inventory(vm_names=("web1", "db1", "app1"))
    repo = factories.repository()
    factories.restore_point(vms[0], repo, timezone.now())
    factories.restore_point(vms[1], repo, timezone.now(), state="corrupted")
    page = client.get(reverse("dashboard")).content.decode()
    assert 'data-figure="protected">1<' in page
    assert 'data-figure="unprotected">2<' in page
    # The unprotected VMs are named, with a link to each.
    assert reverse("inventory:vm_detail", args=[vms[1].pk]) in page
    assert reverse("inventory:vm_detail", args=[vms[2].pk]) in page
    assert reverse("inventory:vm_detail", args=[vms[0].pk]) not in page


def test_a_vm_restored_in_place_counts_as_protected_by_the_restore_points_taken_before(db):
    _, _, (web1, db1) = factories.inventory()
    factories.restore_point(web1, factories.repository(), timezone.now())
    factories.restored_in_place(web1)  # the engine re-created web1 with a new id
    figures = dashboard.protection()
    assert (figures["total"], figures["protected"]) == (2, 1)
    assert [vm.name for vm in figures["unprotected"]] == ["db1"]


def test_removed_vms_are_not_counted(client, operator):
    _, _, vms = factories.inventory(vm_names=("web1", "gone1"))
    vms[1].removed = True
    vms[1].save()
    assert dashboard.protection()["total"] == 1


def test_sessions_of_the_last_day_are_counted_by_result(client, operator):
    ended_session("nightly", "success", minutes_ago=30, seconds=60)
    ended_session("nightly", "success", minutes_ago=90, seconds=60)
    ended_session("nightly", "failed", minutes_ago=120, seconds=60)
    ended_session("old", "failed", minutes_ago=60 * 30, seconds=60)
    page = client.get(reverse("dashboard")).content.decode()
    assert 'data-figure="sessions-success">2<' in page
    assert 'data-figure="sessions-failed">1<' in page
    assert 'data-figure="sessions-warning">0<' in page


def test_running_sessions_poll_fast_and_show_their_progress(client, operator):
    Session.objects.create(name="nightly", state="running", started=timezone.now(), progress=42.0)
    fragment = client.get(reverse("dashboard_running"), headers={"HX-Request": "true"}).content.decode()
    assert 'value="42.0"' in fragment
    assert "every 2s" in fragment
    assert "<html" not in fragment


def test_with_nothing_running_the_fragment_polls_slowly(client, operator):
    fragment = client.get(reverse("dashboard_running")).content.decode()
    assert "Nothing is running" in fragment
    assert "every 10s" in fragment


def test_repositories_show_capacity_and_data_reduction(client, operator):
    repo = factories.repository()
    repo.stats = {"capacity": 1000 * 2**30, "used": 250 * 2**30, "dedup_ratio": 3.25}
    repo.save()
    page = client.get(reverse("dashboard")).content.decode()
    assert '<progress value="25" max="100"' in page
    assert "3.25×" in page


def test_reconcile_actions_are_listed(client, operator):
    ReconcileAction.objects.create(kind="snapshot_deleted", object_id="snap-1",
                                   message="Deleted snapshot snap-1 left by session 9")
    ReconcileAction.objects.create(kind="snapshot_deleted", message="old",
                                   time=timezone.now() - timedelta(days=10))
    page = client.get(reverse("dashboard")).content.decode()
    assert "Deleted snapshot snap-1 left by session 9" in page
    assert "old" not in page.split("Cleaned up by reconcile")[1].split("</section>")[0]


def test_charts_are_server_drawn_svg(client, operator):
    ended_session("nightly", "success", minutes_ago=10, seconds=300, stored=3 * 2**30)
    ended_session("nightly", "failed", minutes_ago=5, seconds=30)
    page = client.get(reverse("dashboard")).content.decode()
    assert page.count("<svg") == 2
    assert "3.0\xa0GB stored by backups in the last 14 days" in page
    assert "5.0\xa0GB</text>" in page  # a round top for the axis
    assert 'class="bar bar-failed"' in page
    assert "<script" not in page.split("<main>")[1]


def test_stored_bytes_are_summed_per_day():
    chart = dashboard.charts.stored_per_day({timezone.localdate(): 10, timezone.localdate() - timedelta(days=1): 5})
    heights = [bar.height for bar in chart.bars]
    assert heights[1] == 2 * heights[0]


def test_a_missing_app_leaves_a_note_instead_of_an_error(client, operator):
    def missing():
        raise ModuleNotFoundError("No module named 'workers.models'", name="workers.models")

    with mock.patch.object(dashboard, "workers", autospec=True, side_effect=missing):
        page = client.get(reverse("dashboard")).content.decode()
    assert "Workers will show here once that part of the backup server is installed." in page


def test_a_restore_operator_sees_the_dashboard(client, django_user_model):
    user = django_user_model.objects.create_user("rita", password="pw-for-tests")
    user.groups.add(Group.objects.get(name="Restore operator"))
    client.force_login(user)
    assert client.get(reverse("dashboard")).status_code == 200


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get(reverse("dashboard_running"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_repositories_fragment_reads_figures_from_a_running_data_mover(client, operator, tmp_path,
                                                                           output_dir):
    from repositories.models import Repository
    from tests.repositories.conftest import start_datamover
    from tests.support.processes import running, wait_for_port

    port, token, args, log = start_datamover(tmp_path, output_dir)
    with running(args, log_path=log) as process:
        wait_for_port(port, process=process)
        Repository.objects.create(name="live", path=str(tmp_path / "datamover"),
                                  datamover_url=f"http://127.0.0.1:{port}", token=token)
        page = client.get(reverse("dashboard")).content.decode()
        assert 'hx-get="/dashboard/repositories/" hx-trigger="load"' in page
        fragment = client.get(reverse("dashboard_repositories")).content.decode()
    assert "reading…" not in fragment and "unreachable" not in fragment
    assert "% used" in fragment
    assert Repository.objects.get(name="live").stats_updated is not None


def test_an_unreachable_data_mover_is_named_in_the_fragment(client, operator):
    factories.repository()  # its data mover URL is http://127.0.0.1:1
    fragment = client.get(reverse("dashboard_repositories")).content.decode()
    assert "Data mover unreachable" in fragment
    assert "hx-trigger" not in fragment  # loaded once, not again and again


def test_worker_vms_are_not_counted_as_vms_to_protect(client, operator):
    from workers.models import Worker

    manager, cluster, vms = factories.inventory(vm_names=("web1", "vbr-worker-w1"))
    Worker.objects.create(name="w1", manager=manager, cluster=cluster, engine_vm_id=vms[1].engine_id,
                          state="ready")
    page = client.get(reverse("dashboard")).content.decode()
    assert 'data-figure="unprotected">1<' in page
    assert reverse("workers:detail", args=[Worker.objects.get().pk]) in page


def test_problems_are_listed_first(client, operator):
    from workers.models import Worker

    manager, cluster, vms = factories.inventory(vm_names=("web1",))
    manager.state, manager.last_error = "error", "Wrong user name or password"
    manager.save()
    Worker.objects.create(name="w9", manager=manager, cluster=cluster, state="unreachable",
                          last_error="no heartbeat since 10:00")
    factories.restore_point(vms[0], factories.repository(), timezone.now(), state="corrupted")
    page = client.get(reverse("dashboard")).content.decode()
    attention = page.split("Needs attention")[1].split("</section>")[0]
    assert "Manager engine1 can&#x27;t be reached: Wrong user name or password" in attention
    assert "Worker w9 is unreachable: no heartbeat since 10:00" in attention
    assert "1 restore point failed verification" in attention


def test_nothing_needs_attention_on_a_healthy_installation(client, operator):
    factories.inventory()
    assert "Needs attention" not in client.get(reverse("dashboard")).content.decode()


def test_a_queue_no_runner_serves_is_named(client, operator, settings):
    from django_q.models import OrmQ

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "orm": "default"}
    OrmQ.objects.create(key="embedded", payload="x", lock=timezone.now() - timedelta(minutes=5))
    OrmQ.objects.create(key="control", payload="y", lock=timezone.now())  # just queued
    page = client.get(reverse("dashboard")).content.decode()
    assert "1 task waited over a minute on queue embedded" in page
    assert "Q_CLUSTER_NAME=embedded manage.py qcluster" in page
    assert "queue control" not in page
