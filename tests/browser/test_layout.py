"""Every main page is usable at 1280 px and at a phone's width (no sideways scrolling of the page),
and its actions are reachable with the keyboard alone."""

import re

import pytest

from jobs.models import Session
from tests.browser.conftest import log_in
from tests.jobs import factories

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 900}


@pytest.fixture
def installation(db):
    """Rows for every page: a manager with VMs, a repository, a job, sessions, a restore point."""
    from django.utils import timezone

    _, _, vms = factories.inventory(vm_names=("web-frontend-production-01", "db1", "app1"))
    repository = factories.repository()
    repository.stats = {"capacity": 2**40, "used": 2**38, "dedup_ratio": 2.5, "manifests": 1}
    repository.save()
    job = factories.job("nightly production backup", vms=vms[:2], repository=repository)
    session = Session.objects.create(job=job, name=job.name, state="success", started=timezone.now(),
                                     finished=timezone.now(), progress=100)
    point = factories.restore_point(vms[0], repository, timezone.now(), job=job, session=session)
    return {"job": job, "session": session, "point": point, "vm": vms[0], "repository": repository}


def pages(installation) -> list[str]:
    return ["/", "/inventory/", f"/inventory/vms/{installation['vm'].pk}/", "/inventory/managers/",
            "/repositories/", f"/repositories/{installation['repository'].pk}/", "/workers/",
            "/jobs/", f"/jobs/{installation['job'].pk}/", "/jobs/new/name/?restart=1",
            "/jobs/sessions/", f"/jobs/sessions/{installation['session'].pk}/",
            f"/jobs/restore-points/{installation['point'].pk}/", "/jobs/restore/"]


WIDEST = """[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .filter(e => !e.closest('.overflow-auto'))
  .slice(0, 4).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


def overflowing(page) -> int:
    """How many pixels the page is wider than the window (0: nothing to scroll sideways)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


@pytest.mark.parametrize("viewport", [WIDE, PHONE], ids=["1280px", "phone"])
def test_no_page_scrolls_sideways(browser, live_server, admin_user, installation, viewport, output_dir):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        log_in(page, live_server, admin_user, admin_user.plain_password)
        page.get_by_role("heading", name="Dashboard").wait_for()
        too_wide = {}
        for path in pages(installation):
            response = page.goto(live_server.url + path)
            assert response.status == 200, path
            page.wait_for_load_state("networkidle")
            extra = overflowing(page)
            if extra > 0:
                too_wide[path] = (extra, page.evaluate(WIDEST))
                page.screenshot(path=str(output_dir / f"{path.strip('/').replace('/', '_') or 'dashboard'}.png"),
                                full_page=True)
        assert too_wide == {}, f"pages wider than {viewport['width']} px (extra px): {too_wide}"
    finally:
        context.close()


def focus_trail(page, presses: int) -> list[str]:
    """The accessible text of each element that Tab reaches, in order."""
    trail = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        trail.append(page.evaluate(
            "(document.activeElement.innerText || document.activeElement.value || '').trim()"))
    return trail


def test_the_main_actions_are_reachable_with_the_keyboard(page, live_server, admin_user, installation):
    log_in(page, live_server, admin_user, admin_user.plain_password)
    page.get_by_role("heading", name="Dashboard").wait_for()
    menu = focus_trail(page, 12)
    for label in ("Inventory", "Repositories", "Workers", "Jobs", "Sessions", "Restore", "Log out"):
        assert label in menu, menu

    page.goto(f"{live_server.url}/jobs/{installation['job'].pk}/")
    trail = focus_trail(page, 30)
    assert "Run now" in trail and "Edit" in trail, trail
    page.goto(f"{live_server.url}/jobs/")
    page.keyboard.press("Tab")
    while page.evaluate("document.activeElement.innerText.trim()") != "New job":
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/jobs/new/name/"))
