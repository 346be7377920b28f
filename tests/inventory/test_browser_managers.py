"""In a real browser: add the simulator as a manager, test the connection, save, sync now live."""

import pytest

from tests.browser.conftest import admin_user, log_in  # noqa: F401 - fixtures
from tests.support.processes import manage_py, running

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_an_administrator_adds_tests_and_syncs_a_manager(
        page, live_server, admin_user, simulator, live_env, output_dir):  # noqa: F811
    page.set_default_timeout(45_000)  # the machine is shared: waits, not speed checks
    log_in(page, live_server, admin_user, admin_user.plain_password)
    page.goto(f"{live_server.url}/inventory/managers/add/")
    page.get_by_label("Name", exact=True).fill("lab")
    page.get_by_label("API URL").fill(simulator.url)
    page.get_by_label("Username").fill(simulator.username)
    page.get_by_label("Password", exact=True).fill("wrong-password")
    page.get_by_label("CA certificate (PEM)").fill(simulator.ca_file.read_text())
    page.get_by_role("button", name="Test connection").click()
    page.get_by_text("Wrong user name or password").wait_for()
    page.get_by_label("Password", exact=True).fill(simulator.password)
    page.get_by_role("button", name="Test connection").click()
    page.get_by_text("Connected to").wait_for()
    page.screenshot(path=str(output_dir / "test-connection.png"))
    with running(manage_py("qcluster"), live_env, output_dir / "control.log", graceful=False):
        page.get_by_role("button", name="Save").click()
        page.wait_for_url(f"{live_server.url}/inventory/managers/")
        assert simulator.password not in page.content()
        # Saving a new manager starts its first sync; the row polls until it is done.
        page.locator('[data-state="connected"]').wait_for(timeout=60_000)
        page.get_by_role("button", name="Sync now").click()
        # The answer to the click is the row in state syncing; polling then brings connected.
        page.locator('[data-state="syncing"]').wait_for()
        page.locator('[data-state="connected"]').wait_for(timeout=60_000)
    page.screenshot(path=str(output_dir / "synced.png"))
    page.get_by_role("link", name="Browse the inventory").click()
    page.get_by_role("link", name="small-vm1").wait_for()
    page.get_by_placeholder("Search VMs by name, description or id").fill("vm2")
    page.get_by_role("link", name="small-vm1").wait_for(state="detached")
    assert page.get_by_role("link", name="small-vm2").is_visible()
    page.screenshot(path=str(output_dir / "inventory.png"), full_page=True)
