"""Workers pages: who may see and change them, the figures they show, the deploy form and actions."""

import pytest
from django.urls import reverse
from django.utils import timezone

from inventory.models import Cluster, Disk, Host, StorageDomain
from repositories.models import Repository
from vbrsite.roles import ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR
from workers import dispatch
from workers.choices import DiskTaskState, WorkerState
from workers.models import DiskTask, Worker

ROLES = [ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR]
NOT_ADMINISTRATORS = [OPERATOR, RESTORE_OPERATOR]


@pytest.fixture
def worker(make_worker):
    return make_worker("w1", max_tasks=3)


def running_task(worker, rate=50e6):
    manager = worker.manager
    disk = Disk.objects.filter(manager=manager).first()
    repository = Repository.objects.create(name="r", path="/r", datamover_url="http://127.0.0.1:9")
    task = dispatch.submit_backup_disk(session_id=1, manager=manager, repository=repository,
                                       disk=disk, transfer_url="https://h/images/t", worker=worker)
    DiskTask.objects.filter(pk=task.pk).update(state=DiskTaskState.RUNNING, rate=rate,
                                               bytes_done=5, bytes_total=10, started=timezone.now())
    return task


@pytest.mark.parametrize("role", ROLES)
def test_everyone_sees_workers_with_state_tasks_and_throughput(client_as, role, worker):
    running_task(worker)
    client = client_as(role)
    response = client.get(reverse("workers:index"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-worker="w1"' in html and 'data-worker="embedded"' in html
    assert 'data-active="1"' in html and "1 / 3" in html and "47.7\xa0MB/s" in html
    assert 'hx-trigger="every 2s"' in html  # a disk is moving: the table polls
    assert client.get(reverse("workers:detail", args=[worker.pk])).status_code == 200


def test_the_table_stops_polling_when_nothing_moves(client_as, worker):
    client = client_as(OPERATOR)
    assert client.get(reverse("workers:index_table")).status_code == 286
    running_task(worker)
    assert client.get(reverse("workers:index_table")).status_code == 200


@pytest.mark.parametrize("role", NOT_ADMINISTRATORS)
def test_only_administrators_change_workers(client_as, role, worker):
    client = client_as(role)
    assert client.get(reverse("workers:deploy")).status_code == 403
    assert client.post(reverse("workers:start", args=[worker.pk])).status_code == 403
    for action in ("stop", "redeploy", "remove"):
        assert client.post(reverse("workers:confirm", args=[worker.pk, action]),
                           {"confirm": "on"}).status_code == 403
    assert b"Deploy worker" not in client.get(reverse("workers:index")).content


def test_an_administrator_deploys_a_worker_from_the_form(client_as, inventory_manager,
                                                         django_capture_on_commit_callbacks):
    cluster = Cluster.objects.get(manager=inventory_manager)
    host = Host.objects.get(manager=inventory_manager)
    client = client_as(ADMINISTRATOR)
    assert client.get(reverse("workers:deploy")).status_code == 200
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(reverse("workers:deploy"), {
            "name": "new-worker", "cluster": cluster.pk, "preferred_host": host.pk, "cpus": 4,
            "memory": 4096, "vnic_profile": "ovirtmgmt", "max_tasks": 2, "template": "Blank"})
    worker = Worker.objects.get(name="new-worker")
    assert response.status_code == 302 and response.url == worker.get_absolute_url()
    assert worker.manager == inventory_manager and worker.state == WorkerState.DEPLOYING
    assert (worker.cpus, worker.memory, worker.max_tasks, worker.queue) == (4, 4096, 2, "worker-new-worker")
    assert len(callbacks) == 1  # the deployment goes to the control runner


def test_the_deploy_form_says_what_is_wrong(client_as, inventory_manager):
    cluster = Cluster.objects.get(manager=inventory_manager)
    other = Cluster.objects.create(manager=inventory_manager, engine_id="cl-9", name="Other")
    stray = Host.objects.create(manager=inventory_manager, engine_id="h-9", name="stray", cluster=other)
    response = client_as(ADMINISTRATOR).post(reverse("workers:deploy"), {
        "name": "bad name!", "cluster": cluster.pk, "preferred_host": stray.pk, "cpus": 0,
        "memory": 100, "max_tasks": 1, "template": "Blank"})
    html = response.content.decode()
    assert response.status_code == 200 and not Worker.objects.exists()
    assert "not in cluster" in html and "starting with a letter or digit" in html


def test_the_deploy_form_names_at_the_field_the_storage_domains_of_the_clusters_data_center(
        client_as, remote_cluster):
    data1 = StorageDomain.objects.get(name="data1")
    response = client_as(ADMINISTRATOR).post(reverse("workers:deploy"), {
        "name": "remote-worker", "cluster": remote_cluster.pk, "storage_domain": data1.pk, "cpus": 2,
        "memory": 2048, "max_tasks": 1, "template": "Blank"})
    assert response.status_code == 200 and not Worker.objects.exists()
    assert response.context["form"].errors["storage_domain"] == [
        "Storage domain data1 is not attached to data center Remote, where cluster Remote is: choose a "
        "storage domain of that data center (usable there: remote1)."]


def test_stopping_asks_for_confirmation_and_refuses_a_busy_worker_without_force(
        client_as, worker, django_capture_on_commit_callbacks):
    client = client_as(ADMINISTRATOR)
    url = reverse("workers:confirm", args=[worker.pk, "stop"])
    assert client.get(url).status_code == 200
    assert client.post(url, {}).status_code == 200  # not confirmed
    task = running_task(worker)
    response = client.post(url, {"confirm": "on"})
    assert response.status_code == 200 and b"moving 1 disk" in response.content
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(url, {"confirm": "on", "force": "on"})
    # Two queued: the disk sent again elsewhere at once, and the worker's shutdown.
    assert response.status_code == 302 and len(callbacks) == 2
    worker.refresh_from_db()
    task.refresh_from_db()
    assert worker.state == WorkerState.STOPPING and task.worker != worker and task.attempt == 2


def test_the_worker_page_polls_while_it_deploys_and_stops_once_ready(client_as, make_worker):
    worker = make_worker("fresh", state=WorkerState.DEPLOYING, beat=False)
    client = client_as(OPERATOR)
    url = reverse("workers:detail", args=[worker.pk])
    assert b'hx-trigger="every 2s"' in client.get(url).content
    assert client.get(url, headers={"HX-Request": "true"}).status_code == 200
    Worker.objects.filter(pk=worker.pk).update(state=WorkerState.READY)
    response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 286 and b"Ready" in response.content


def test_the_workers_list_is_searched_and_sorted_and_its_polling_keeps_the_sort(client_as, make_worker):
    make_worker("alpha", state="deploying")
    make_worker("bravo")
    client = client_as(OPERATOR)
    page = client.get("/workers/?sort=-name").content.decode()
    assert page.index("bravo") < page.index("alpha")
    assert 'hx-get="/workers/table/?sort=-name"' in page  # alpha deploys: the table polls
    page = client.get("/workers/?q=brav").content.decode()
    assert "bravo" in page and "alpha" not in page


def test_the_worker_page_polls_while_a_task_waits_in_its_queue(client_as, worker):
    task = running_task(worker)
    DiskTask.objects.filter(pk=task.pk).update(state=DiskTaskState.PENDING, started=None)
    page = client_as(OPERATOR).get(reverse("workers:detail", args=[worker.pk])).content
    assert b'hx-trigger="every 2s"' in page  # it shows the task start without a reload


def test_a_manager_password_that_cant_be_decrypted_breaks_no_workers_page(client_as, worker):
    from django.db import connection

    with connection.cursor() as cursor:  # as if VBR_SECRETS_KEY had changed
        cursor.execute("UPDATE inventory_manager SET password = 'fernet:stale' WHERE id = %s",
                       [worker.manager.pk])
    client = client_as(ADMINISTRATOR)
    for url in (reverse("workers:index"), reverse("workers:detail", args=[worker.pk]),
                reverse("workers:deploy"), "/"):
        assert client.get(url).status_code == 200, url
