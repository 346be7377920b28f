"""Command errors are clear and exit non-zero, with nothing saved."""

import json

import pytest
from django.core.management import CommandError, call_command

from inventory.models import Manager
from inventory.sync import store_inventory
from tests.inventory.factories import inventory

pytestmark = pytest.mark.django_db


def test_an_unknown_manager_lists_the_known_ones():
    Manager.objects.create(name="prod", url="https://e/ovirt-engine/api", password="p")
    with pytest.raises(CommandError, match="No manager named 'lab' \\(known: prod\\)"):
        call_command("test_manager", "lab")
    with pytest.raises(CommandError, match="No manager named"):
        call_command("sync_inventory", "lab")


def test_add_manager_refuses_a_missing_password_file_and_a_plain_http_url(tmp_path):
    with pytest.raises(CommandError, match="Can't read the password file"):
        call_command("add_manager", "lab", "--url", "https://e/ovirt-engine/api", "--username", "a",
                     "--password-file", str(tmp_path / "missing"))
    secret = tmp_path / "pw"
    secret.write_text("pw\n")
    with pytest.raises(CommandError, match="not an HTTPS URL"):
        call_command("add_manager", "lab", "--url", "http://e/ovirt-engine/api", "--username", "a",
                     "--password-file", str(secret))
    assert not Manager.objects.exists()


def test_add_manager_will_not_overwrite_without_update(tmp_path):
    Manager.objects.create(name="lab", url="https://e/ovirt-engine/api", password="p")
    secret = tmp_path / "pw"
    secret.write_text("new")
    with pytest.raises(CommandError, match="--update"):
        call_command("add_manager", "lab", "--url", "https://e/ovirt-engine/api", "--username", "a",
                     "--password-file", str(secret), "--skip-test")
    call_command("add_manager", "lab", "--url", "https://e/ovirt-engine/api", "--username", "b",
                 "--password-file", str(secret), "--skip-test", "--update")
    assert Manager.objects.get(name="lab").password == "new"


def test_sync_inventory_with_no_managers_says_how_to_add_one():
    with pytest.raises(CommandError, match="add_manager"):
        call_command("sync_inventory")


def test_list_vms_prints_a_table_and_json_without_removed_vms(capsys):
    manager = Manager.objects.create(name="prod", url="https://e/ovirt-engine/api", password="p")
    store_inventory(manager, inventory(3))
    manager.vm_set.filter(name="vm-0002").update(removed=True)
    call_command("list_vms")
    table = capsys.readouterr().out
    assert "vm-0000" in table and "vm-0002" not in table
    call_command("list_vms", "--json", "--removed")
    assert {vm["name"] for vm in json.loads(capsys.readouterr().out)} == {"vm-0000", "vm-0001", "vm-0002"}
