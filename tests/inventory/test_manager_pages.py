"""Manager pages: who may use them, the form, sync requests and the password never shown."""

import pytest
from django.urls import reverse

from inventory.choices import ManagerState
from inventory.models import Manager
from tests.inventory.conftest import PASSWORD, ROLES_THAT_BROWSE, ROLES_THAT_MAY_NOT_MANAGE


@pytest.fixture
def manager(db):
    return Manager.objects.create(name="prod", url="https://engine.example.com/ovirt-engine/api",
                                  username="admin@internal", password=PASSWORD)


@pytest.mark.parametrize("role", ROLES_THAT_BROWSE)
def test_everyone_logged_in_sees_the_managers(client_as, role, manager):
    response = client_as(role).get(reverse("inventory:managers"))
    assert response.status_code == 200
    assert b"prod" in response.content and PASSWORD.encode() not in response.content


@pytest.mark.parametrize("role", ROLES_THAT_MAY_NOT_MANAGE)
def test_only_administrators_add_edit_test_or_sync(client_as, role, manager):
    client = client_as(role)
    assert client.get(reverse("inventory:manager_add")).status_code == 403
    assert client.get(reverse("inventory:manager_edit", args=[manager.pk])).status_code == 403
    assert client.post(reverse("inventory:manager_test"), {}).status_code == 403
    assert client.post(reverse("inventory:manager_sync", args=[manager.pk])).status_code == 403
    assert b"Sync now" not in client.get(reverse("inventory:managers")).content


def test_anonymous_users_are_sent_to_login(client, db):
    response = client.get(reverse("inventory:managers"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_an_administrator_adds_a_manager_with_an_encrypted_password_and_it_syncs(
        admin_client, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr("inventory.services.enqueue_sync", sent.append)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("inventory:manager_add"), {
            "name": "lab", "url": "https://lab.example.com/ovirt-engine/api/", "username": "admin@internal",
            "password": "lab-secret", "ca_certificate": ""})
    assert response.status_code == 302
    manager = Manager.objects.get(name="lab")
    assert manager.password == "lab-secret" and manager.url.endswith("/ovirt-engine/api")
    assert sent == [manager.pk] and manager.state == ManagerState.SYNCING
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM inventory_manager WHERE name = 'lab'")
        assert "lab-secret" not in cursor.fetchone()[0]


def test_the_edit_form_never_shows_the_password_and_empty_keeps_it(admin_client, manager):
    url = reverse("inventory:manager_edit", args=[manager.pk])
    page = admin_client.get(url)
    assert page.status_code == 200 and PASSWORD.encode() not in page.content
    admin_client.post(url, {"name": "prod", "url": manager.url, "username": "other@internal",
                            "password": "", "ca_certificate": ""})
    manager.refresh_from_db()
    assert manager.username == "other@internal" and manager.password == PASSWORD


def test_a_bad_ca_and_http_url_are_refused_with_what_to_do(admin_client):
    response = admin_client.post(reverse("inventory:manager_add"), {
        "name": "x", "url": "http://engine/ovirt-engine/api", "username": "a", "password": "p",
        "ca_certificate": "not a pem"})
    assert response.status_code == 200
    assert b"https://ENGINE/ovirt-engine/api" in response.content
    assert b"PEM" in response.content
    assert not Manager.objects.filter(name="x").exists()


def test_sync_now_marks_the_manager_syncing_once_and_enqueues_on_commit(
        admin_client, manager, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr("inventory.services.enqueue_sync", sent.append)
    url = reverse("inventory:manager_sync", args=[manager.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, headers={"HX-Request": "true"})
        admin_client.post(url, headers={"HX-Request": "true"})
    assert sent == [manager.pk]
    manager.refresh_from_db()
    assert manager.state == ManagerState.SYNCING
    assert b'hx-trigger="every 2s"' in response.content


def test_the_row_stops_polling_once_the_sync_is_over(admin_client, manager):
    url = reverse("inventory:manager_row", args=[manager.pk])
    Manager.objects.filter(pk=manager.pk).update(state=ManagerState.SYNCING)
    assert admin_client.get(url).status_code == 200
    Manager.objects.filter(pk=manager.pk).update(state=ManagerState.CONNECTED)
    response = admin_client.get(url)
    assert response.status_code == 286 and b"every 2s" not in response.content


def test_the_admin_never_shows_the_password(client, manager, django_user_model):
    superuser = django_user_model.objects.create_superuser("root", password="x")
    client.force_login(superuser)
    page = client.get(reverse("admin:inventory_manager_change", args=[manager.pk]))
    assert page.status_code == 200 and PASSWORD.encode() not in page.content
    assert client.get(reverse("admin:inventory_vm_changelist")).status_code == 200


def test_a_password_that_cant_be_decrypted_any_more_breaks_no_page(admin_client, manager, client,
                                                                  django_user_model):
    from django.core.management import CommandError, call_command
    from django.db import connection

    from inventory.sync import sync_manager
    from plugin.errors import AuthenticationFailed

    with connection.cursor() as cursor:  # as if VBR_SECRETS_KEY had changed
        cursor.execute("UPDATE inventory_manager SET password = 'fernet:stale' WHERE id = %s", [manager.pk])
    assert admin_client.get(reverse("inventory:managers")).status_code == 200
    assert admin_client.get(reverse("inventory:manager_edit", args=[manager.pk])).status_code == 200
    body = admin_client.post(reverse("inventory:manager_test_existing", args=[manager.pk]), {
        "name": "prod", "url": manager.url, "username": "admin@internal", "password": "",
        "ca_certificate": ""}).content.decode()
    assert "can&#x27;t be used" in body and "enter the secret again" in body
    with pytest.raises(CommandError, match="enter the secret again"):
        call_command("test_manager", "prod")
    with pytest.raises(AuthenticationFailed):
        sync_manager(Manager.objects.get(pk=manager.pk))
    assert Manager.objects.get(pk=manager.pk).state == ManagerState.ERROR
    superuser = django_user_model.objects.create_superuser("root", password="x")
    client.force_login(superuser)
    assert client.get(reverse("admin:inventory_manager_change", args=[manager.pk])).status_code == 200
    # Entering the password again repairs it.
    admin_client.post(reverse("inventory:manager_edit", args=[manager.pk]), {
        "name": "prod", "url": manager.url, "username": "admin@internal", "password": "fresh",
        "ca_certificate": ""})
    assert Manager.objects.get(pk=manager.pk).password == "fresh"
