"""Repository pages: who may use them, the figures they show, Test, and secrets never shown."""

import pytest
from django.urls import reverse

from repositories.models import GatewayServer, Repository
from repositories.store import ChunkStore, block_digest
from repositories.store.store import chunk_name
from tests.repositories.conftest import compressible_block, random_block
from tests.repositories.test_datamover import send_disk
from vbrsite.roles import ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR

TOKEN_MARK = "token-that-must-never-show"
ROLES = [ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR]
VIEWERS = [OPERATOR, RESTORE_OPERATOR]


@pytest.fixture
def repository(db, tmp_path):
    ChunkStore.create(tmp_path / "repo")
    return Repository.objects.create(name="primary", path=str(tmp_path / "repo"),
                                     datamover_url="http://127.0.0.1:9", token=TOKEN_MARK)


@pytest.fixture
def served(db, datamover):
    """A repository record for the running data mover."""
    return Repository.objects.create(name="served", path=str(datamover.path),
                                     datamover_url=datamover.url, token=datamover.token)


@pytest.mark.parametrize("role", ROLES)
def test_everyone_logged_in_sees_repositories_and_gateways(client_as, role, repository):
    client = client_as(role)
    response = client.get(reverse("repositories:index"))
    assert response.status_code == 200 and b"primary" in response.content
    assert TOKEN_MARK.encode() not in response.content
    assert client.get(reverse("repositories:gateways")).status_code == 200


@pytest.mark.parametrize("role", VIEWERS)
def test_only_administrators_add_edit_or_test(client_as, role, repository):
    client = client_as(role)
    assert client.get(reverse("repositories:add")).status_code == 403
    assert client.get(reverse("repositories:edit", args=[repository.pk])).status_code == 403
    assert client.post(reverse("repositories:test"), {}).status_code == 403
    assert client.post(reverse("repositories:test_existing", args=[repository.pk])).status_code == 403
    assert client.get(reverse("repositories:gateway_add")).status_code == 403
    assert b"Add repository" not in client.get(reverse("repositories:index")).content


def test_anonymous_users_are_sent_to_login(client, db):
    response = client.get(reverse("repositories:index"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_the_row_shows_capacity_used_space_dedup_and_restore_points(client_as, served, datamover):
    shared = compressible_block(1)
    with datamover.client() as client:
        send_disk(client, "rp-1", "vm-1", [shared, random_block()])
        send_disk(client, "rp-2", "vm-2", [shared])
    response = client_as(OPERATOR).get(reverse("repositories:row", args=[served.pk]))
    page = response.content.decode()
    assert "<progress" in page and 'data-figure="dedup"' in page
    served.refresh_from_db()
    assert served.stats["manifests"] == 2 and served.stats["chunks"] == 2
    assert f'{served.stats["dedup_ratio"]:.2f}×' in page
    assert f'data-figure="restore-points"><a href="/repositories/{served.pk}/">2</a>' in page


def test_an_unreachable_data_mover_is_shown_on_its_row(client_as, repository):
    response = client_as(OPERATOR).get(reverse("repositories:row", args=[repository.pk]))
    assert b'data-outcome="unreachable"' in response.content


def test_the_detail_lists_restore_points_per_vm_with_sizes_and_states(client_as, served, datamover):
    with datamover.client() as client:
        send_disk(client, "rp-1", "vm-a", [random_block()])
        send_disk(client, "rp-2", "vm-a", [random_block()])
        send_disk(client, "rp-3", "vm-b", [random_block()])
    served.last_verification = {"ok": False, "affected_manifests": ["rp-2"]}
    served.save()
    page = client_as(RESTORE_OPERATOR).get(reverse("repositories:detail", args=[served.pk])).content.decode()
    assert page.count("data-restore-point=") == 3
    assert "2 restore points" in page and "1 restore point<" in page
    assert page.index('data-restore-point="rp-2"') < page.index('data-restore-point="rp-1"')
    rp2 = page[page.index('data-restore-point="rp-2"'):page.index('data-restore-point="rp-1"')]
    assert 'data-state="corrupted"' in rp2 and "4.0\xa0MB" in rp2
    assert TOKEN_MARK not in page


def test_the_detail_groups_a_vm_restored_in_place_once_under_its_id_now_on_its_manager(repository):
    from django.utils import timezone

    from repositories.views import _restore_points_by_vm
    from tests.jobs import factories

    _, _, (web1,) = factories.inventory(vm_names=("web1",))
    # oVirt DR: a second engine knows the same VM by the same id; it was not restored there.
    _, _, (replica,) = factories.inventory(vm_names=("web1",), manager="engine2")
    recreated = factories.restored_in_place(web1, "vm-0b")  # the engine re-created web1 as vm-0b
    for n, vm in ((1, web1), (2, recreated), (3, replica)):
        factories.restore_point(vm, repository, timezone.now(), manifest_id=f"rp-{n}")
    summaries = [{"id": f"rp-{n}", "vm_id": vm_id, "vm_name": "web1", "created": f"2026-01-0{n}T00:00:00+00:00"}
                 for n, vm_id in ((1, "vm-0"), (2, "vm-0b"), (3, "vm-0"), (4, "vm-0"))]  # rp-4: no row
    summaries.append({"id": "rp-5", "vm_id": "vm-b", "vm_name": "db1", "created": "2026-01-05T00:00:00+00:00"})

    groups = _restore_points_by_vm(repository, summaries)

    assert [(g["name"], [p["id"] for p in g["restore_points"]]) for g in groups] == [
        ("db1", ["rp-5"]), ("web1", ["rp-2", "rp-1"]), ("web1", ["rp-4", "rp-3"])]


def test_the_detail_searches_vms_and_pages_them(client_as, served, datamover):
    with datamover.client() as client:
        send_disk(client, "rp-1", "vm-a", [random_block()])
        send_disk(client, "rp-3", "vm-b", [random_block()])
    url = reverse("repositories:detail", args=[served.pk])
    operator = client_as(OPERATOR)
    page = operator.get(url, {"q": "VM-B"}).content.decode()
    assert 'data-restore-point="rp-3"' in page and 'data-restore-point="rp-1"' not in page
    page = operator.get(url, {"per_page": "1", "page": "2"}).content.decode()
    assert page.count("data-restore-point=") == 1 and "page=1" in page


def test_an_administrator_adds_a_local_repository_and_its_store_is_created(client_as, tmp_path):
    path = tmp_path / "new-repo"
    response = client_as(ADMINISTRATOR).post(reverse("repositories:add"), {
        "name": "second", "kind": "local", "path": str(path), "datamover_url": "",
        "immutable_days": "3", "capacity_gib": "2"})
    assert response.status_code == 302, response.content.decode()
    repository = Repository.objects.get(name="second")
    assert repository.datamover_url == "http://127.0.0.1:8100"
    assert repository.capacity == 2 * 1024**3 and repository.immutable_days == 3
    assert len(repository.token) > 30 and not repository.encrypted
    assert ChunkStore.open(path).info()["encrypted"] is False


def test_an_encrypted_repository_keeps_its_key_encrypted_at_rest(client_as, tmp_path):
    passphrase = "a long enough passphrase"
    response = client_as(ADMINISTRATOR).post(reverse("repositories:add"), {
        "name": "vault", "kind": "local", "path": str(tmp_path / "vault"), "immutable_days": "0",
        "encrypt": "on", "passphrase": passphrase, "passphrase_again": passphrase})
    assert response.status_code == 302, response.content.decode()
    repository = Repository.objects.get(name="vault")
    assert repository.encrypted and repository.repository_key().check_value == repository.key_check
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT key, token FROM repositories_repository WHERE name = 'vault'")
        stored_key, stored_token = cursor.fetchone()
    assert stored_key.startswith("fernet:") and repository.key not in stored_key
    assert stored_token.startswith("fernet:")


def _add_on_gateway(client, gateway, url, passphrase, token=""):
    return client.post(reverse("repositories:add"), {
        "name": "vault", "kind": "nfs", "path": "/mnt/nas/vault", "gateway": gateway.pk,
        "datamover_url": url, "token": token, "immutable_days": "0",
        "encrypt": "on", "passphrase": passphrase, "passphrase_again": passphrase})


def test_an_encrypted_repository_on_a_gateway_shows_the_command_that_creates_it_there(client_as):
    gateway = GatewayServer.objects.create(name="nas-gw", address="10.0.0.5")
    client = client_as(ADMINISTRATOR)
    response = _add_on_gateway(client, gateway, "", "a long enough passphrase")
    assert response.status_code == 302, response.content.decode()
    repository = Repository.objects.get(name="vault")
    assert repository.encrypted and repository.kdf["kdf"] == "scrypt"
    command = repository.gateway_command()
    assert "--encryption vbr-encryption-1:" in command and "--bind 0.0.0.0:8100" in command
    page = client.get(reverse("repositories:detail", args=[repository.pk]), follow=True).content.decode()
    assert command in page.replace("&quot;", '"')
    assert repository.key not in page and repository.token not in page


def test_a_gateway_repository_that_serves_already_decides_the_key(client_as, tmp_path, output_dir):
    from repositories.store import EncryptionParameters, derive_key, new_kdf_parameters
    from tests.repositories.conftest import start_datamover
    from tests.support.processes import running, wait_for_port

    gateway = GatewayServer.objects.create(name="nas-gw", address="127.0.0.1")
    parameters = new_kdf_parameters()
    key = derive_key("the passphrase of old", parameters)
    text = EncryptionParameters.for_key(key, parameters).to_text()
    port, token, args, log = start_datamover(tmp_path, output_dir, "--encryption", text)
    client = client_as(ADMINISTRATOR)
    with running(args, log_path=log) as process:
        wait_for_port(port, process=process)
        url = f"http://127.0.0.1:{port}"
        refused = _add_on_gateway(client, gateway, url, "not the passphrase", token).content.decode()
        assert "wrong passphrase" in refused and not Repository.objects.exists()
        response = _add_on_gateway(client, gateway, url, "the passphrase of old", token)
        assert response.status_code == 302, response.content.decode()
    repository = Repository.objects.get(name="vault")
    assert repository.key == key.to_text() and repository.kdf == parameters


def test_an_unencrypted_repository_on_a_gateway_is_not_recorded_as_encrypted(client_as, datamover):
    gateway = GatewayServer.objects.create(name="nas-gw", address="127.0.0.1")
    response = _add_on_gateway(client_as(ADMINISTRATOR), gateway, datamover.url, "a long enough passphrase",
                               datamover.token)
    assert "serves an unencrypted repository" in response.content.decode()
    assert not Repository.objects.exists()


def test_mismatched_passphrases_are_refused(client_as, tmp_path):
    response = client_as(ADMINISTRATOR).post(reverse("repositories:add"), {
        "name": "vault", "kind": "local", "path": str(tmp_path / "v"), "immutable_days": "0",
        "encrypt": "on", "passphrase": "a long enough passphrase", "passphrase_again": "another one!!"})
    assert b"The two passphrases differ" in response.content
    assert not Repository.objects.exists()


def test_editing_keeps_the_token_when_left_empty(client_as, repository):
    client = client_as(ADMINISTRATOR)
    page = client.get(reverse("repositories:edit", args=[repository.pk])).content.decode()
    assert TOKEN_MARK not in page
    response = client.post(reverse("repositories:edit", args=[repository.pk]), {
        "name": "primary", "kind": "nfs", "path": repository.path, "token": "",
        "datamover_url": "http://127.0.0.1:8101", "immutable_days": "1"})
    assert response.status_code == 302
    repository.refresh_from_db()
    assert repository.token == TOKEN_MARK and repository.kind == "nfs"


def test_test_reaches_the_data_mover_and_writes_a_probe(client_as, served):
    response = client_as(ADMINISTRATOR).post(reverse("repositories:test_existing", args=[served.pk]),
                                             {"datamover_url": served.datamover_url})
    assert b'data-outcome="ok"' in response.content and b"probe" in response.content


def test_test_shows_the_exact_problem(client_as, served, repository):
    client = client_as(ADMINISTRATOR)
    response = client.post(reverse("repositories:test"), {
        "datamover_url": served.datamover_url, "token": "wrong"})
    assert b'data-outcome="failed"' in response.content and b"refused the token" in response.content
    response = client.post(reverse("repositories:test_existing", args=[repository.pk]),
                           {"datamover_url": repository.datamover_url})
    assert b"can&#x27;t be reached" in response.content
    response = client.post(reverse("repositories:test"), {"datamover_url": served.datamover_url})
    assert b"Give the data mover token" in response.content


def test_an_administrator_adds_a_gateway(client_as):
    response = client_as(ADMINISTRATOR).post(reverse("repositories:gateway_add"), {
        "name": "nas-gw", "address": "10.0.0.5"})
    assert response.status_code == 302
    assert GatewayServer.objects.get(name="nas-gw").default_datamover_url() == "http://10.0.0.5:8100"


def test_a_gateway_turns_ready_or_unreachable_with_its_data_mover(client_as, served):
    gateway = GatewayServer.objects.create(name="gw", address="127.0.0.1")
    served.gateway = gateway
    served.save()
    client = client_as(OPERATOR)
    client.get(reverse("repositories:row", args=[served.pk]))
    gateway.refresh_from_db()
    assert gateway.state == "ready" and gateway.last_seen
    served.datamover_url = "http://127.0.0.1:9"
    served.save()
    client.get(reverse("repositories:row", args=[served.pk]))
    gateway.refresh_from_db()
    assert gateway.state == "unreachable" and "can't be reached" in gateway.last_error
    assert b"unreachable" in client.get(reverse("repositories:gateways")).content.lower()


def test_an_operator_verifies_a_repository_and_damaged_restore_points_show(
        client_as, served, datamover, monkeypatch, django_capture_on_commit_callbacks):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)  # the task runs here, as the control runner would
    block = compressible_block(9)
    with datamover.client() as client:
        send_disk(client, "rp-1", "vm-a", [block])
        send_disk(client, "rp-2", "vm-b", [random_block()])
    path = datamover.path / chunk_name(block_digest(block))
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    client = client_as(OPERATOR)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("repositories:verify", args=[served.pk]))
    assert response.status_code == 302
    served.refresh_from_db()
    assert served.verified_at and served.corrupted_restore_points == {"rp-1"}
    page = client.get(reverse("repositories:detail", args=[served.pk])).content.decode()
    assert "1 restore point(s) damaged" in page
    rp1 = page[page.index('data-restore-point="rp-1"'):]
    assert 'data-state="corrupted"' in rp1[:2000]


def test_a_restore_operator_cant_start_a_verification(client_as, repository):
    client = client_as(RESTORE_OPERATOR)
    assert client.post(reverse("repositories:verify", args=[repository.pk])).status_code == 403
    assert b"Verify now" not in client.get(reverse("repositories:detail", args=[repository.pk])).content


def test_administrators_get_the_forms_and_the_admin_never_shows_secrets(client_as, repository, django_user_model):
    client = client_as(ADMINISTRATOR)
    page = client.get(reverse("repositories:add")).content.decode()
    assert "hx-post" in page and ">Test</button>" in page and 'name="passphrase"' in page
    assert 'name="passphrase"' not in client.get(reverse("repositories:edit", args=[repository.pk])).content.decode()
    superuser = django_user_model.objects.create_superuser("root", password="x")
    client.force_login(superuser)
    admin_page = client.get(reverse("admin:repositories_repository_change", args=[repository.pk]))
    assert admin_page.status_code == 200 and b"primary" in admin_page.content
    assert TOKEN_MARK.encode() not in admin_page.content


def test_a_ca_certificate_that_isnt_one_is_refused_at_the_field(client_as, tmp_path):
    response = client_as(ADMINISTRATOR).post(reverse("repositories:add"), {
        "name": "tls", "kind": "local", "path": str(tmp_path / "tls"), "immutable_days": "0",
        "datamover_url": "https://127.0.0.1:8100",
        "ca_certificate": "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----"})
    assert "usable CA certificate" in response.content.decode()
    assert not Repository.objects.exists()


def test_a_stored_ca_that_cant_be_used_is_an_error_the_pages_show(client_as, repository):
    Repository.objects.filter(pk=repository.pk).update(datamover_url="https://127.0.0.1:9",
                                                       ca_certificate="-----BEGIN CERTIFICATE-----\nx\n")
    client = client_as(OPERATOR)
    assert client.get(reverse("repositories:row", args=[repository.pk])).status_code == 200
    page = client.get(reverse("repositories:detail", args=[repository.pk]))
    assert page.status_code == 200 and "can&#x27;t be used" in page.content.decode()


def test_a_token_that_cant_be_decrypted_any_more_breaks_no_page_and_can_be_entered_again(client_as, repository):
    from django.db import connection

    with connection.cursor() as cursor:  # as if VBR_SECRETS_KEY had changed
        cursor.execute("UPDATE repositories_repository SET token = 'fernet:stale' WHERE id = %s", [repository.pk])
    client = client_as(ADMINISTRATOR)
    for url in (reverse("repositories:index"), reverse("repositories:edit", args=[repository.pk]), "/",
                reverse("repositories:detail", args=[repository.pk])):
        assert client.get(url).status_code == 200, url
    row = client.get(reverse("repositories:row", args=[repository.pk])).content.decode()
    assert "enter the secret again" in row
    tested = client.post(reverse("repositories:test_existing", args=[repository.pk]),
                         {"datamover_url": repository.datamover_url, "token": ""})
    assert tested.status_code == 200 and "type it in the form" in tested.content.decode()
    client.post(reverse("repositories:edit", args=[repository.pk]), {
        "name": "primary", "kind": "local", "path": repository.path, "token": "a fresh token",
        "datamover_url": repository.datamover_url, "immutable_days": "0"})
    assert Repository.objects.get(pk=repository.pk).token == "a fresh token"
