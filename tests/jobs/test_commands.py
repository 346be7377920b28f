"""The jobs commands: create_job, list_restore_points, cancel_session, apply_retention, run_job --wait."""

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.core.management.base import OutputWrapper
from django.utils import timezone

from inventory.models import VM
from jobs.choices import ScheduleKind, SessionState, VmSelection
from jobs.management.commands._common import follow_session, quiet_task_queue
from jobs.models import BackupJob, ReplacedVm, RestorePoint, Session, VmLock
from jobs.restore.terminal import wait_for_session
from tests.jobs import factories
from tests.jobs.conftest import session_log


@pytest.fixture
def setup(db):
    manager, cluster, vms = factories.inventory()
    return {"vms": vms, "cluster": cluster, "repo": factories.repository()}


# The pages show times in VBR_TIME_ZONE; one without summer time keeps the expected text fixed.
LOCAL_ZONE = "Asia/Kolkata"
A_MORNING = datetime(2025, 1, 15, 9, 30, 5, tzinfo=UTC)  # 15:00:05+05:30 there


def test_create_job_with_vms_tag_or_cluster(setup, capsys):
    call_command("create_job", "explicit", "--repository", "repo1", "--vm", "web1", "--vm", "vm-1",
                 "--retain", "3", "--schedule", "0 22 * * *")
    job = BackupJob.objects.get(name="explicit")
    assert {vm.name for vm in job.resolve_vms()} == {"web1", "db1"}
    assert job.retain == 3 and job.schedule_kind == ScheduleKind.CRON and job.next_run()
    assert "Created job explicit" in capsys.readouterr().out
    call_command("create_job", "listed", "--repository", "repo1", "--vm", "web1", "vm-1")  # --vm VM ...
    assert {vm.name for vm in BackupJob.objects.get(name="listed").resolve_vms()} == {"web1", "db1"}
    call_command("create_job", "tagged", "--repository", "repo1", "--tag", "production")
    assert BackupJob.objects.get(name="tagged").selection == VmSelection.TAG
    call_command("create_job", "clustered", "--repository", "repo1", "--cluster", "Production")
    assert BackupJob.objects.get(name="clustered").cluster == setup["cluster"]


@pytest.mark.parametrize(("args", "message"), [
    (["--repository", "nope", "--vm", "web1"], "No repository named 'nope' (known: repo1)"),
    (["--repository", "repo1", "--vm", "ghost"], "No VM named 'ghost'"),
    (["--repository", "repo1", "--vm", "web1", "--schedule", "nightly"], "schedule_cron: Use five fields"),
    (["--repository", "repo1", "--cluster", "Nowhere"], "No cluster(s) named 'Nowhere'"),
])
def test_create_job_says_what_is_wrong(setup, args, message):
    with pytest.raises(CommandError) as caught:
        call_command("create_job", "bad", *args)
    assert message in str(caught.value)
    assert not BackupJob.objects.exists()


def test_list_restore_points_json_has_exactly_the_promised_keys_oldest_first(setup, capsys):
    web1, db1 = setup["vms"]
    now = timezone.now()
    newer = factories.restore_point(web1, setup["repo"], now, type="incremental")
    older = factories.restore_point(db1, setup["repo"], now - timedelta(hours=1))
    call_command("list_restore_points", "--json")
    records = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in records] == [older.pk, newer.pk]
    assert set(records[1]) == {"id", "vm", "time", "type", "state", "repository", "disks"}
    assert records[1]["vm"] == "web1" and records[1]["type"] == "incremental"
    assert records[1]["repository"] == "repo1" and records[1]["state"] == "ok"
    assert records[1]["time"] == newer.time.isoformat()
    assert set(records[1]["disks"][0]) == {"id", "name", "size"}
    call_command("list_restore_points", "--vm", "db1", "--json")
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [older.pk]
    web1.removed = True
    web1.save()
    call_command("list_restore_points", "--vm", "web1")
    assert "web1" in capsys.readouterr().out


def test_list_restore_points_shows_the_pages_time_zone_and_json_stays_utc(setup, settings, capsys):
    settings.TIME_ZONE = LOCAL_ZONE
    factories.restore_point(setup["vms"][0], setup["repo"], A_MORNING)
    call_command("list_restore_points")
    assert "2025-01-15 15:00:05+05:30" in capsys.readouterr().out
    call_command("list_restore_points", "--json")
    assert json.loads(capsys.readouterr().out)[0]["time"] == "2025-01-15T09:30:05+00:00"


@pytest.mark.parametrize("follow", [follow_session, wait_for_session])
def test_wait_prints_log_times_in_the_pages_time_zone_with_the_offset(db, settings, follow):
    settings.TIME_ZONE = LOCAL_ZONE
    session = Session.objects.create(name="s", state=SessionState.SUCCESS, summary="1 VM(s): 1 success")
    session.log_lines.create(time=A_MORNING, message="Backup of web1 started.")
    out = StringIO()
    follow(session, OutputWrapper(out))
    assert "15:00:05+05:30 info" in out.getvalue() and "09:30" not in out.getvalue()


def test_list_restore_points_of_a_vm_includes_those_taken_before_in_place_restores(setup, capsys):
    web1, db1 = setup["vms"]
    now = timezone.now()
    taken = [factories.restore_point(web1, setup["repo"], now - timedelta(days=2))]
    factories.restore_point(db1, setup["repo"], now - timedelta(days=1))
    # Restored in place twice: the engine re-created web1 as vm-8, then as vm-9.
    web1.removed = True
    web1.save()
    for old, new in (("vm-0", "vm-8"), ("vm-8", "vm-9")):
        vm = VM.objects.create(manager=web1.manager, engine_id=new, name="web1", cluster=web1.cluster)
        ReplacedVm.record(web1.manager_id, old, new, vm_name="web1")
        taken.append(factories.restore_point(vm, setup["repo"], now - timedelta(hours=3 - len(taken))))
    VM.objects.filter(engine_id="vm-8").update(removed=True)

    for vm in ("web1", "vm-0", "vm-9"):  # its name, and any engine id it had
        call_command("list_restore_points", "--vm", vm, "--json")
        assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [p.pk for p in taken], vm


def test_list_restore_points_of_a_vm_whose_manager_was_removed_goes_by_the_restore_points(setup, capsys):
    web1, db1 = setup["vms"]
    now = timezone.now()
    taken = [factories.restore_point(web1, setup["repo"], now - timedelta(days=1))]
    taken.append(factories.restore_point(factories.restored_in_place(web1), setup["repo"], now))
    factories.restore_point(db1, setup["repo"], now)
    web1.manager.delete()  # its VMs leave the inventory; their restore points stay

    for vm in ("web1", "vm-0", "vm-9"):  # the name the restore points recorded, or an id the VM had
        call_command("list_restore_points", "--vm", vm, "--json")
        assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [p.pk for p in taken], vm
    with pytest.raises(CommandError, match="No VM named 'ghost' in the inventory, and no restore point"):
        call_command("list_restore_points", "--vm", "ghost")
    RestorePoint.objects.filter(vm_engine_id="vm-1").update(vm_name="web1")  # another VM, same name
    with pytest.raises(CommandError, match=r"Restore points of 2 VMs named 'web1'.*\(vm-1, vm-9\)"):
        call_command("list_restore_points", "--vm", "web1")


def test_cancel_session_of_a_queued_session_and_of_an_ended_one(setup, capsys):
    session = Session.objects.create(name="s")
    call_command("cancel_session", str(session.pk))
    assert Session.objects.get(pk=session.pk).state == SessionState.CANCELLED
    with pytest.raises(CommandError, match="has ended already"):
        call_command("cancel_session", str(session.pk))
    with pytest.raises(CommandError, match="No session 999"):
        call_command("cancel_session", "999")


def test_cancel_session_of_a_mailed_job_mails_its_end_and_leaves_stderr_empty(
        setup, transactional_db, caplog, capsys, mailoutbox):
    job = factories.job("nightly", vms=setup["vms"][:1], repository=setup["repo"],
                        notification_address="ops@example.org")
    session = Session.objects.create(job=job, name=job.name)

    call_command("cancel_session", str(session.pk))  # committed for real: the mail goes out
    for thread in threading.enumerate():
        if thread.name == f"session-{session.pk}-mail":
            thread.join(10)

    assert [m.subject for m in mailoutbox] == ["[backup] nightly: Cancelled"]
    assert [r.getMessage() for r in caplog.records if r.name == "django-q"] == []  # no "Enqueued [control] ..."
    assert capsys.readouterr().err == ""


@pytest.mark.integration
def test_apply_retention_deletes_manifests_then_rows_and_keeps_the_newest(setup, datamover, settings, capsys):
    from repositories.store import DiskIndex, build_manifest

    settings.TIME_ZONE = LOCAL_ZONE
    repo = setup["repo"]
    repo.datamover_url, repo.token = datamover.url, datamover.token
    repo.save()
    job = factories.job("keep2", vms=setup["vms"][:1], repository=repo, retain=2)
    now = timezone.now()
    with repo.client() as client:
        for age in (3, 2, 1, 0):
            when = now - timedelta(days=age)
            manifest = build_manifest(f"rp-keep2-{age}", "vm-0", [DiskIndex(id="disk-0", size=8 * 2**20)],
                                      created=when)
            client.put_manifest(manifest)
            factories.restore_point(setup["vms"][0], repo, when, job=job, manifest_id=manifest.id)
    call_command("apply_retention", "keep2")
    out = capsys.readouterr().out
    assert "2 restore point(s) deleted" in out
    assert out.count("+05:30)") == 2  # the deleted points' times, in the pages' time zone
    assert sorted(RestorePoint.objects.values_list("manifest_id", flat=True)) == ["rp-keep2-0", "rp-keep2-1"]
    with repo.client() as client:
        assert sorted(m["id"] for m in client.list_manifests()) == ["rp-keep2-0", "rp-keep2-1"]


@pytest.mark.integration
def test_retention_counts_the_restore_points_of_a_vm_from_before_its_in_place_restore(setup, datamover):
    from repositories.store import DiskIndex, build_manifest

    repo = setup["repo"]
    repo.datamover_url, repo.token = datamover.url, datamover.token
    repo.save()
    web1 = setup["vms"][0]
    job = factories.job("keep2", vms=[web1], repository=repo, retain=2)
    recreated = VM.objects.create(manager=web1.manager, engine_id="vm-9", name="web1")
    ReplacedVm.record(web1.manager_id, "vm-0", "vm-9", vm_name="web1")  # restored in place between the 2nd and 3rd
    now = timezone.now()
    with repo.client() as client:
        for age, vm in ((3, web1), (2, web1), (1, recreated), (0, recreated)):
            when = now - timedelta(days=age)
            manifest = build_manifest(f"rp-replaced-{age}", vm.engine_id,
                                      [DiskIndex(id="disk-0", size=8 * 2**20)], created=when)
            client.put_manifest(manifest)
            factories.restore_point(vm, repo, when, job=job, manifest_id=manifest.id)

    call_command("apply_retention", "keep2")

    assert sorted(RestorePoint.objects.values_list("manifest_id", flat=True)) == \
        ["rp-replaced-0", "rp-replaced-1"]


def test_apply_retention_fails_when_the_data_mover_keeps_what_the_policy_lets_go(setup, settings, capsys,
                                                                                monkeypatch):
    settings.TIME_ZONE = LOCAL_ZONE
    # The data mover client retries a refused connection with backoff (15 s here): no waiting.
    monkeypatch.setattr("repositories.datamover.client.time.sleep", lambda seconds: None)
    job = factories.job("keep1", vms=setup["vms"][:1], repository=setup["repo"], retain=1)
    now = timezone.now()
    for age in (2, 1, 0):  # the factory's repository has no data mover listening
        factories.restore_point(setup["vms"][0], setup["repo"], now - timedelta(days=age), job=job)
    with pytest.raises(CommandError, match="2 restore point"):
        call_command("apply_retention", "keep1")
    err = capsys.readouterr().err
    assert err.count("Retention kept restore point") == 2 and err.count("+05:30):") == 2
    assert RestorePoint.objects.filter(job=job).count() == 3


@pytest.mark.integration
def test_run_job_wait_exits_2_when_a_vm_is_skipped_because_it_is_busy(stack, capsys):
    job = stack.job("busy", ["small-vm1"])
    holder = Session.objects.create(name="other", state=SessionState.RUNNING, heartbeat=timezone.now())
    VmLock.objects.create(vm=stack.vm("small-vm1"), session=holder)
    with pytest.raises(SystemExit) as caught:
        call_command("run_job", "busy", "--wait")
    assert caught.value.code == 2
    session = Session.objects.get(job=job)
    assert session.state == SessionState.WARNING
    assert f"already being backed up by session {holder.pk}" in session_log(session)
    assert "Session" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["run_job", "nightly"], ["backup_vm", "web1", "--repository", "repo1"]])
def test_queueing_a_session_leaves_stderr_empty(setup, transactional_db, caplog, args):
    factories.job("nightly", vms=setup["vms"][:1], repository=setup["repo"])
    call_command(*args)  # committed for real, so the session is sent to the runner's queue
    assert Session.objects.get().task_id  # sent all the same
    assert [r.getMessage() for r in caplog.records if r.name == "django-q"] == []  # no "Enqueued [control] ..."


def test_the_quiet_queue_keeps_warnings_and_leaves_the_runners_logging_as_it_was(caplog):
    queue = logging.getLogger("django-q")
    with quiet_task_queue():
        queue.info("Enqueued [control] 1")
        queue.warning("the broker did not answer")
    queue.info("Process-1 processing [session-1]")
    assert [r.getMessage() for r in caplog.records if r.name == "django-q"] == [
        "the broker did not answer", "Process-1 processing [session-1]"]
