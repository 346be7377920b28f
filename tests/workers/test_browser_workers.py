"""An administrator deploys a worker from the Workers page and asks to stop it, in a real browser."""

import pytest

from tests.browser.conftest import admin_user, log_in  # noqa: F401 - fixtures
from workers.models import Worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_administrator_deploys_a_worker_and_stops_it(page, live_server, admin_user,  # noqa: F811
                                                        inventory_manager, output_dir):
    page.goto(f"{live_server.url}/workers/")
    log_in(page, live_server, admin_user, admin_user.plain_password)
    page.wait_for_url(f"{live_server.url}/workers/")
    page.get_by_role("heading", name="Workers").wait_for()
    assert "No workers deployed yet" in page.content()
    page.get_by_role("button", name="Deploy worker").click()
    page.get_by_label("Name").fill("browser-worker")
    page.get_by_label("Cluster").select_option(label="engine1 / Cluster1")
    page.get_by_label("Max concurrent tasks").fill("2")
    page.get_by_role("button", name="Deploy").click()
    page.get_by_role("heading", name="Worker browser-worker").wait_for()
    assert page.locator("[data-state]").first.get_attribute("data-state") == "deploying"
    page.screenshot(path=str(output_dir / "worker-detail.png"), full_page=True)
    worker = Worker.objects.get(name="browser-worker")
    assert worker.max_tasks == 2 and worker.cluster.name == "Cluster1"
    Worker.objects.filter(pk=worker.pk).update(state="ready")
    page.reload()
    page.get_by_role("button", name="Stop").click()
    page.get_by_label("Yes, I mean it").check()
    page.get_by_role("button", name="Stop").click()
    page.get_by_role("heading", name="Worker browser-worker").wait_for()
    assert Worker.objects.get(pk=worker.pk).state == "stopping"
    page.goto(f"{live_server.url}/workers/")
    page.locator('tr[data-worker="browser-worker"]').wait_for()
    page.screenshot(path=str(output_dir / "workers.png"), full_page=True)
