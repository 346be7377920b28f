"""The inventory browser: every role browses; search, filters, pagination, protection hook."""

import pytest
from django.urls import reverse

from inventory.models import VM, Manager
from inventory.sync import store_inventory
from tests.inventory.conftest import ROLES_THAT_BROWSE
from tests.inventory.factories import inventory


@pytest.fixture
def synced(db):
    manager = Manager.objects.create(name="prod", url="https://e/ovirt-engine/api", password="pw")
    store_inventory(manager, inventory(60))
    return manager


@pytest.mark.parametrize("role", ROLES_THAT_BROWSE)
def test_every_role_browses_vms_with_disks_state_tags_and_protection(client_as, role, synced):
    response = client_as(role).get(reverse("inventory:index"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "vm-0000" in body and "vm-0000_disk0" in body and "Cluster1" in body
    assert "gold" in body and "not protected" in body
    assert "Page 1 of 2" in body


def test_search_and_filters_narrow_the_list(admin_client, synced):
    url = reverse("inventory:index")
    assert admin_client.get(url, {"q": "vm-0007"}).context["page"].paginator.count == 1
    assert admin_client.get(url, {"status": "up"}).context["page"].paginator.count == 30
    assert admin_client.get(url, {"tag": "gold"}).context["page"].paginator.count == 30
    cluster = VM.objects.first().cluster
    assert admin_client.get(url, {"cluster": cluster.pk}).context["page"].paginator.count == 60


def test_htmx_search_answers_only_the_results_fragment(admin_client, synced):
    response = admin_client.get(reverse("inventory:index"), {"q": "vm-0001"},
                                headers={"HX-Request": "true"})
    assert b"<html" not in response.content and b"vm-0001" in response.content


def test_removed_vms_are_hidden_unless_asked_for(admin_client, synced):
    VM.objects.filter(name="vm-0003").update(removed=True)
    url = reverse("inventory:index")
    assert admin_client.get(url, {"q": "vm-0003"}).context["page"].paginator.count == 0
    assert admin_client.get(url, {"q": "vm-0003", "removed": "1"}).context["page"].paginator.count == 1


def test_the_vm_page_shows_its_disks(admin_client, synced):
    vm = VM.objects.get(name="vm-0002")
    body = admin_client.get(reverse("inventory:vm_detail", args=[vm.pk])).content.decode()
    assert vm.engine_id in body and "vm-0002_disk0" in body and "not protected" in body


def test_protection_from_the_jobs_hook_and_storage_space_are_shown(admin_client, synced):
    from django.utils import timezone

    from tests.jobs import factories

    vm = VM.objects.get(name="vm-0001")
    repository = factories.repository()
    job = factories.job("Nightly", vms=[vm], repository=repository)
    factories.restore_point(vm, repository, timezone.now(), job=job)
    body = admin_client.get(reverse("inventory:index"), {"q": "vm-000"}).content.decode()
    assert 'data-protection="ok"' in body and "Nightly" in body
    assert body.count("not protected") == 9
    assert "data1" in body and "free of" in body


def test_the_browser_never_decrypts_manager_passwords(admin_client, synced, monkeypatch):
    def refuse(stored):
        raise AssertionError("a page decrypted a manager's password")

    monkeypatch.setattr("vbrsite.secrets.decrypt", refuse)
    vm = VM.objects.get(name="vm-0001")
    assert admin_client.get(reverse("inventory:index")).status_code == 200
    assert admin_client.get(reverse("inventory:vm_detail", args=[vm.pk])).status_code == 200
    assert admin_client.get(reverse("inventory:managers")).status_code == 200


def test_vms_sort_by_the_allowed_columns_only(admin_client, synced):
    url = reverse("inventory:index")
    by_memory = admin_client.get(url, {"sort": "-memory"}).context["vms"]
    assert by_memory[0].name == "vm-0059"
    assert admin_client.get(url, {"sort": "description"}).context["vms"][0].name == "vm-0000"
    second_page = admin_client.get(url, {"sort": "-memory", "page": 2}).content.decode()
    assert "vm-0000" in second_page and "sort=-memory" in second_page
