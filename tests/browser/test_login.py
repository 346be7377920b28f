"""A person logs in with a real browser and lands on the dashboard."""

import pytest

from tests.browser.conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_logging_in_shows_the_dashboard(page, live_server, admin_user, output_dir):
    page.goto(f"{live_server.url}/jobs/")
    assert "/login/" in page.url
    log_in(page, live_server, admin_user, admin_user.plain_password)
    page.wait_for_url(f"{live_server.url}/jobs/")
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("heading", name="Dashboard").wait_for()
    assert "admin" in page.content()
    page.screenshot(path=str(output_dir / "dashboard.png"))


def test_a_wrong_password_says_so(page, live_server, admin_user):
    log_in(page, live_server, admin_user, "not-the-password")
    page.get_by_role("alert").wait_for()
    assert "wrong" in page.get_by_role("alert").inner_text()
    assert "/login/" in page.url
