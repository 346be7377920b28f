"""The short lists (managers, repositories, gateways) are searchable, sortable and paginated."""

import re

import pytest
from django.contrib.auth.models import Group, User

from inventory.models import Manager
from repositories.models import GatewayServer, Repository

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    user = User.objects.create_user(username="operator", password="x")
    user.groups.add(Group.objects.get_or_create(name="Operator")[0])
    client.force_login(user)
    return client


def names_in_order(html: str, names: list[str]) -> list[str]:
    positions = {name: html.index(name) for name in names if name in html}
    return sorted(positions, key=positions.get)


def test_managers_are_searched_and_sorted(operator_client):
    for name in ("engine-b", "engine-a", "lab-c"):
        Manager.objects.create(name=name, url=f"https://{name}.example/ovirt-engine/api")
    page = operator_client.get("/inventory/managers/").content.decode()
    assert names_in_order(page, ["engine-a", "engine-b", "lab-c"]) == ["engine-a", "engine-b", "lab-c"]
    page = operator_client.get("/inventory/managers/?sort=-name").content.decode()
    assert names_in_order(page, ["engine-a", "engine-b", "lab-c"]) == ["lab-c", "engine-b", "engine-a"]
    assert 'aria-sort="descending"' in page
    page = operator_client.get("/inventory/managers/?q=lab").content.decode()
    assert "lab-c" in page and "engine-a" not in page
    page = operator_client.get("/inventory/managers/?q=nothing-like-it").content.decode()
    assert "No manager matches" in page


def test_repositories_are_paginated_with_the_sort_kept(operator_client):
    for index in range(60):
        Repository.objects.create(name=f"repo-{index:02d}", path=f"/srv/r{index}",
                                  datamover_url="http://127.0.0.1:1")
    first = operator_client.get("/repositories/?sort=-name").content.decode()
    assert "repo-59" in first and "repo-00" not in first
    next_link = re.search(r'href="(\?[^"]*page=2[^"]*)"', first)
    assert next_link and "sort=-name" in next_link.group(1).replace("&amp;", "&")
    second = operator_client.get("/repositories/" + next_link.group(1).replace("&amp;", "&")).content.decode()
    assert "repo-00" in second and "repo-59" not in second


def test_gateways_are_searched(operator_client):
    GatewayServer.objects.create(name="nas-gw", address="10.0.0.8")
    GatewayServer.objects.create(name="tape-gw", address="10.0.0.9")
    page = operator_client.get("/repositories/gateways/?q=tape").content.decode()
    assert "tape-gw" in page and "nas-gw" not in page
    page = operator_client.get("/repositories/gateways/?sort=-name").content.decode()
    assert names_in_order(page, ["nas-gw", "tape-gw"]) == ["tape-gw", "nas-gw"]
