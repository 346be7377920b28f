"""Every page of the site asks an anonymous visitor to log in."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

PUBLIC = {"login", "logout", "admin:login", "admin:logout", "admin:password_reset", "admin:view_on_site",
          "admin:javascript-catalog", "admin:jsi18n"}


def walk(patterns, prefix="", namespace=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry.url_patterns, prefix + str(entry.pattern), ns)
        elif isinstance(entry, URLPattern):
            yield f"{namespace}{entry.name or ''}", prefix + str(entry.pattern)


def concrete_path(pattern: str) -> str:
    """A path that matches the pattern: converters get a plausible value."""
    pattern = pattern.lstrip("^").rstrip("$")
    pattern = re.sub(r"<int:\w+>", "1", pattern)
    pattern = re.sub(r"<uuid:\w+>", "00000000-0000-0000-0000-000000000001", pattern)
    pattern = re.sub(r"<(?:str:|slug:|path:)?\w+>", "x", pattern)
    pattern = re.sub(r"\(\?P<\w+>[^)]*\)", "1", pattern)
    pattern = pattern.replace("\\", "").replace("^", "").replace("$", "")
    return "/" + pattern


ROUTES = sorted({(name, concrete_path(pattern)) for name, pattern in walk(get_resolver().url_patterns)})


def test_the_walk_finds_the_pages():
    names = {name for name, _ in ROUTES}
    assert {"dashboard", "inventory:index", "jobs:index"} <= names


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "path"), [r for r in ROUTES if r[0] not in PUBLIC])
def test_anonymous_user_is_sent_to_login(client, name, path):
    response = client.get(path)
    assert response.status_code == 302, f"{name} {path} answered {response.status_code}"
    assert "/login/" in response["Location"]


@pytest.mark.django_db
def test_login_page_is_public(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b"Log in" in response.content
