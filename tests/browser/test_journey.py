"""The whole journey in a real browser, against the simulator and real runners.

Log in; add the simulator as a manager (test the connection, save, sync); add a
repository and start its data mover; deploy a worker (the local launcher starts
its runner); create a job with the wizard; run it; watch the progress bar reach
100% and the session end in success, the disks moved by the worker; see the
restore point; restore it as a new VM; see that VM in the inventory; the
dashboard counts the VM as protected. The control runner,
the embedded worker runner and the data mover are processes started here
against the test database (live_env); the web pages are the live server's.

Screenshots of the dashboard, the job wizard and a running session are kept with
the test's output, and in docs/screenshots/ for the README when
VBR_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.browser.navigation import nav
from tests.support.processes import free_port, manage_py, running, wait_for_port

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LONG = 120_000  # ms: runner start, sync, a whole backup on two shared cores


@pytest.fixture
def runners(live_env, output_dir):
    """The control runner and the embedded worker runner, as `make run` starts them.

    Worker runners that the control runner starts (the local launcher) are
    stopped afterwards by the pid it recorded.
    """
    # A bandwidth cap keeps the backup running a few seconds, long enough to be seen running;
    # the runners of deployed workers inherit it from the control runner.
    env = {**live_env, "VBR_RUNNER_WORKERS": "2", "VBR_WORKER_MAX_MBPS": "60",
           "VBR_WORKER_LAUNCHER": "local"}
    try:
        with running(manage_py("qcluster"), env, output_dir / "control.log", graceful=False), \
                running(manage_py("qcluster"), {**env, "Q_CLUSTER_NAME": "embedded"},
                        output_dir / "worker.log", graceful=False):
            yield env
    finally:
        stop_worker_runners()


def stop_worker_runners() -> None:
    """Stop the runners of deployed workers as the product does (the runner alone is signalled)."""
    from workers.launchers import stop_local_runner
    from workers.models import Worker

    for worker in Worker.objects.exclude(runner_pid=None):
        stop_local_runner(worker, timeout=10)


def shot(page, name: str, output_dir: Path, *, full_page: bool = True) -> None:
    """Keep a screenshot with the test's output; with VBR_UPDATE_SCREENSHOTS=1 also as the
    README's, in docs/screenshots/ (not at every run: the files would change each time)."""
    page.screenshot(path=str(output_dir / f"{name}.png"), full_page=full_page)
    if os.environ.get("VBR_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def add_manager(page, base: str, sim) -> None:
    nav(page, "Inventory")
    page.goto(f"{base}/inventory/managers/add/")
    page.get_by_label("Name", exact=True).fill("lab")
    page.get_by_label("API URL").fill(sim.url)
    page.get_by_label("Username").fill(sim.username)
    page.get_by_label("Password", exact=True).fill(sim.password)
    page.get_by_label("CA certificate (PEM)").fill(sim.ca_file.read_text())
    page.get_by_role("button", name="Test connection").click()
    page.get_by_text("Connected to").wait_for()
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{base}/inventory/managers/")
    page.get_by_role("button", name="Sync now").click()
    wait_for_sync("lab")
    page.locator('[data-state="connected"]').wait_for(timeout=LONG)
    page.get_by_role("link", name="Browse the inventory").click()
    page.get_by_role("link", name="small-vm1").wait_for()


def add_repository(page, base: str, path: Path, port: int) -> None:
    nav(page, "Repositories")
    page.get_by_role("button", name="Add repository").click()
    page.get_by_label("Name", exact=True).fill("journey")
    page.get_by_label("Path").fill(str(path))
    page.get_by_label("Data mover URL").fill(f"http://127.0.0.1:{port}")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{base}/repositories/")
    page.get_by_role("link", name="journey").first.wait_for()


def reload_until(page, locator, timeout: float = LONG / 1000) -> None:
    """Reload a page that doesn't poll until ``locator`` shows."""
    deadline = time.monotonic() + timeout
    while not locator.count():
        assert time.monotonic() < deadline, f"{locator} did not show within {timeout:.0f} s"
        time.sleep(1)
        page.reload()


def deploy_worker(page) -> None:
    nav(page, "Workers")
    page.get_by_role("button", name="Deploy worker").click()
    page.get_by_label(re.compile(r"^Name:?$")).fill("worker1")
    page.get_by_label(re.compile(r"^Cluster:?$")).select_option(index=1)
    page.get_by_role("button", name="Deploy").click()
    page.get_by_role("heading", name="Worker worker1").wait_for()
    reload_until(page, page.locator('[data-state="ready"]'))


def create_job(page, base: str, output_dir: Path) -> None:
    nav(page, "Jobs")
    page.get_by_role("button", name="New job").click()
    page.get_by_label("Name", exact=True).fill("journey nightly")
    page.get_by_role("button", name="Next").click()
    page.locator("label", has_text="small-vm1").click()
    shot(page, "job-wizard", output_dir)
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Repository").select_option(label="journey")
    page.get_by_role("button", name="Next").click()
    while page.get_by_role("button", name="Next").count():
        page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Save job").click()
    page.get_by_role("heading", name="journey nightly").wait_for()


def run_job_and_watch(page, output_dir: Path) -> None:
    page.get_by_role("button", name="Run now").click()
    page.wait_for_url(re.compile(r"/jobs/sessions/\d+/$"))
    state = page.locator("#session-state")
    progress = page.get_by_role("progressbar", name="Session progress")
    expect(state).to_have_text(re.compile("Running|Success"), timeout=LONG)
    # The bar moves while the page polls: shoot it part way, when it is.
    try:
        expect(progress).not_to_have_attribute("value", re.compile(r"^0(\.0)?$"), timeout=LONG)
    finally:
        if state.inner_text() == "Running":
            shot(page, "running-session", output_dir, full_page=False)
    expect(state).to_have_text("Success", timeout=LONG)
    expect(progress).to_have_attribute("value", "100.0")


def restore_as_new_vm(page, base: str) -> None:
    """From the restore point's page: the whole VM, to a new location, under a new name."""
    page.get_by_role("button", name="Restore…").click()
    page.get_by_label(re.compile("Entire VM to a new location")).check()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("textbox", name=re.compile(r"^Name"))).to_have_value("small-vm1_restored")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Start restore").click()
    page.wait_for_url(re.compile(r"/jobs/sessions/\d+/$"))
    expect(page.locator("#session-state")).to_have_text("Success", timeout=LONG)


def wait_for_sync(name: str, synced_before=None) -> None:
    """Until the manager's sync that was asked for has ended (the row's state may lag)."""
    from inventory.models import Manager

    deadline = time.monotonic() + LONG / 1000
    while True:
        manager = Manager.objects.get(name=name)
        if manager.last_sync != synced_before and manager.state == "connected":
            return
        assert manager.state != "error", manager.last_error
        assert time.monotonic() < deadline, "the sync did not end"
        time.sleep(0.5)


def see_vm_in_inventory(page, base: str, name: str) -> None:
    from inventory.models import Manager

    synced_before = Manager.objects.get(name="lab").last_sync
    page.goto(f"{base}/inventory/managers/")
    page.get_by_role("button", name="Sync now").click()
    wait_for_sync("lab", synced_before)
    page.locator('[data-state="connected"]').wait_for(timeout=LONG)
    nav(page, "Inventory")
    page.get_by_placeholder("Search VMs by name, description or id").fill(name)
    page.get_by_role("link", name=name, exact=True).wait_for()


def test_from_login_to_a_restored_vm(page, live_server, admin_user, simulator, runners,
                                       live_env, output_dir, tmp_path):
    base = live_server.url
    log_in(page, live_server, admin_user, admin_user.plain_password)
    page.get_by_role("heading", name="Dashboard").wait_for()

    add_manager(page, base, simulator)  # 0.2 s per phase: the running session shows

    port = free_port()
    add_repository(page, base, tmp_path / "repository", port)
    with running(manage_py("datamover", "journey"), live_env, output_dir / "datamover.log") as mover:
        wait_for_port(port, process=mover)

        deploy_worker(page)
        create_job(page, base, output_dir)
        run_job_and_watch(page, output_dir)
        assert page.get_by_text("worker1").count(), "the deployed worker moved the disks"

        page.get_by_role("link", name="Restore point").first.click()
        page.get_by_role("heading", name="Restore point of small-vm1").wait_for()
        assert "Full" in page.content()
        point_url = page.url

        restore_as_new_vm(page, base)
        see_vm_in_inventory(page, base, "small-vm1_restored")
        page.goto(point_url)

        nav(page, "Dashboard")
        expect(page.locator('[data-figure="protected"]')).to_have_text("1")
        expect(page.locator('[data-figure="sessions-success"]')).to_have_text("2")  # the backup and the restore
        page.locator("#dashboard-repositories progress").wait_for()
        shot(page, "dashboard", output_dir)
