"""Fixtures of the browser tests; `browser` and `page` come from tests/support/browser.py."""

import pytest


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
