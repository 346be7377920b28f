"""Secrets at rest (vbrsite.secrets): stored encrypted, decrypted only when read."""

import pytest
from django.db import connection

from repositories.models import Repository
from vbrsite.secrets import SecretError

pytestmark = pytest.mark.django_db


def stored(repository, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM repositories_repository WHERE id = %s", [repository.pk])
        return cursor.fetchone()[0]


def test_a_secret_is_stored_encrypted_and_read_plain():
    repository = Repository.objects.create(name="r", path="/r", datamover_url="http://127.0.0.1:9", token="t0ken")
    assert stored(repository, "token").startswith("fernet:") and "t0ken" not in stored(repository, "token")
    assert Repository.objects.get(pk=repository.pk).token == "t0ken"


def test_a_secret_never_read_is_written_back_as_it_was_stored():
    repository = Repository.objects.create(name="r", path="/r", datamover_url="http://127.0.0.1:9", token="t0ken")
    with connection.cursor() as cursor:  # as if the secrets key had changed since
        cursor.execute("UPDATE repositories_repository SET token = 'fernet:stale' WHERE id = %s", [repository.pk])
    loaded = Repository.objects.get(pk=repository.pk)  # loading decrypts nothing
    loaded.description = "NAS in room 2"
    loaded.save()
    assert stored(repository, "token") == "fernet:stale"  # kept for a restored key to open again
    with pytest.raises(SecretError, match="enter the secret again"):
        loaded.token  # noqa: B018 - reading it is what fails


def test_a_deferred_secret_saved_by_name_is_loaded_not_erased():
    from inventory.models import Manager

    Manager.objects.create(name="m", url="https://engine/ovirt-engine/api", password="pw")
    manager = Manager.objects.get(name="m")  # the default manager defers the password
    manager.save(update_fields=["password"])
    assert Manager.objects.get(name="m").credentials().password == "pw"
