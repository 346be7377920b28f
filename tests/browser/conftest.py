"""Playwright driving Debian's chromium (headless); screenshots of failures kept."""

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

# Playwright's sync API runs an event loop in this thread; the ORM calls that
# tests make around it are ordinary synchronous ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.failed_call = report.failed
    return report


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request, output_dir):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    if getattr(request.node, "failed_call", False):
        page.screenshot(path=str(output_dir / "failure.png"), full_page=True)
    context.close()


@pytest.fixture
def admin_user(django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_superuser("admin", password="browser-test-pw")
    user.groups.add(Group.objects.get_or_create(name="Administrator")[0])
    user.plain_password = "browser-test-pw"
    return user


def log_in(page, live_server, user, password: str):
    if "/login/" not in page.url:
        page.goto(f"{live_server.url}/login/")
    page.get_by_label("User name").fill(user.username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
