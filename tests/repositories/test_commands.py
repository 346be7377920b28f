"""The repository commands: add_repository, datamover, verify_repository, collect_garbage."""

import json
import os
import time

import pytest
from django.core.management import CommandError, call_command

from repositories.models import GatewayServer, Repository
from repositories.setup import ensure_default_repository
from repositories.signals import repository_verified
from repositories.store import ChunkStore, block_digest
from repositories.store.store import chunk_name
from tests.repositories.conftest import compressible_block, random_block
from tests.repositories.test_datamover import send_disk
from tests.support.processes import free_port, manage_py, running, wait_for_port


def test_add_repository_creates_the_store_and_a_token(db, tmp_path, capsys):
    call_command("add_repository", "backups", "--path", str(tmp_path / "r"), "--immutable-days", "2")
    repository = Repository.objects.get(name="backups")
    assert repository.token and repository.immutable_days == 2 and not repository.encrypted
    assert ChunkStore.open(tmp_path / "r").info()["format"] == "vbr-repository"
    out = capsys.readouterr().out
    assert "Added repository backups" in out and repository.token not in out


def test_add_repository_encrypts_with_a_passphrase_and_refuses_a_wrong_one(db, tmp_path, capsys):
    (tmp_path / "pass").write_text("first passphrase\n")
    (tmp_path / "wrong").write_text("second passphrase\n")
    call_command("add_repository", "vault", "--path", str(tmp_path / "v"), "--encrypt",
                 "--passphrase-file", str(tmp_path / "pass"))
    repository = Repository.objects.get(name="vault")
    assert repository.encrypted and ChunkStore.open(tmp_path / "v").encrypted
    assert repository.key_check == ChunkStore.open(tmp_path / "v").config["key_check"]
    # The same store, added again by another backup server, needs the same passphrase.
    with pytest.raises(CommandError, match="wrong passphrase"):
        call_command("add_repository", "vault-again", "--path", str(tmp_path / "v"), "--encrypt",
                     "--passphrase-file", str(tmp_path / "wrong"))
    call_command("add_repository", "vault-again", "--path", str(tmp_path / "v"), "--encrypt",
                 "--passphrase-file", str(tmp_path / "pass"))
    assert Repository.objects.get(name="vault-again").key == repository.key


@pytest.mark.parametrize("args, message", [
    (["--encrypt"], "--passphrase-file"),
    (["--gateway", "nowhere"], "no gateway server"),
    (["--path-is-relative"], "not absolute"),
])
def test_add_repository_says_what_to_do_with_bad_input(db, tmp_path, args, message):
    path = "relative/dir" if args == ["--path-is-relative"] else str(tmp_path / "x")
    args = [] if args == ["--path-is-relative"] else args
    with pytest.raises(CommandError, match=message):
        call_command("add_repository", "bad", "--path", path, *args)
    assert not Repository.objects.exists()


def test_add_repository_on_a_gateway_writes_the_token_file(db, tmp_path, capsys):
    GatewayServer.objects.create(name="gw", address="10.1.1.1")
    token_file = tmp_path / "token"
    call_command("add_repository", "nas", "--path", "/mnt/nas/repo", "--gateway", "gw",
                 "--token-file", str(token_file))
    repository = Repository.objects.get(name="nas")
    assert repository.datamover_url == "http://10.1.1.1:8100"
    assert token_file.read_text().strip() == repository.token
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert "python -m repositories.datamover" in capsys.readouterr().out


def test_a_token_file_that_cant_be_written_stops_add_repository_before_anything_is_made(db, tmp_path):
    GatewayServer.objects.create(name="gw", address="10.1.1.1")
    with pytest.raises(CommandError, match="can't write the token file"):
        call_command("add_repository", "nas", "--path", "/mnt/nas/repo", "--gateway", "gw",
                     "--token-file", str(tmp_path / "no-such-folder" / "token"))
    assert not Repository.objects.exists()


def test_the_default_repository_is_created_once(db, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    first = ensure_default_repository()
    assert first.path == str(tmp_path / "repositories" / "default")
    assert ensure_default_repository().pk == first.pk
    assert ChunkStore.open(first.path).info()["encrypted"] is False


@pytest.mark.integration
def test_datamover_serves_a_repository_that_verify_and_gc_commands_use(live_env, tmp_path, output_dir,
                                                                        capsys):
    port = free_port()
    call_command("add_repository", "served", "--path", str(tmp_path / "served"),
                 "--url", f"http://127.0.0.1:{port}")
    repository = Repository.objects.get(name="served")
    received = []
    repository_verified.connect(lambda **kw: received.append(kw["report"]), weak=False,
                                dispatch_uid="test-commands")
    try:
        with running(manage_py("datamover", "served", "--workers", "1"), env=live_env,
                     log_path=output_dir / "datamover.log") as process:
            wait_for_port(port, process=process)
            block = compressible_block(1)
            with repository.client() as client:
                send_disk(client, "rp-1", "vm-1", [block, random_block()])
                send_disk(client, "rp-2", "vm-2", [random_block()])
                client.delete_manifest("rp-2")
            call_command("verify_repository", "served")
            assert "Every restore point is intact" in capsys.readouterr().out
            path = tmp_path / "served" / chunk_name(block_digest(block))
            data = bytearray(path.read_bytes())
            data[50] ^= 1
            path.write_bytes(bytes(data))
            with pytest.raises(CommandError, match="1 restore point"):
                call_command("verify_repository", "served")
            assert "damaged restore point rp-1" in capsys.readouterr().out
            repository.refresh_from_db()
            assert repository.corrupted_restore_points == {"rp-1"}
            assert [r["affected_manifests"] for r in received] == [[], ["rp-1"]]
            _age(tmp_path / "served", 3 * 3600)
            call_command("collect_garbage", "served", "--grace-hours", "1")
            assert "Removed 1 chunk(s)" in capsys.readouterr().out
    finally:
        repository_verified.disconnect(dispatch_uid="test-commands")


def test_commands_name_the_repositories_when_one_is_missing(db, tmp_path):
    call_command("add_repository", "only", "--path", str(tmp_path / "o"))
    for command in ("verify_repository", "collect_garbage", "datamover"):
        with pytest.raises(CommandError, match=r"repositories: only"):
            call_command(command, "missing")


def test_an_unreachable_data_mover_fails_verification_clearly(db, tmp_path):
    call_command("add_repository", "down", "--path", str(tmp_path / "d"),
                 "--url", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(CommandError, match="can't be reached"):
        call_command("verify_repository", "down")


def _age(root, seconds):
    past = time.time() - seconds
    for dirpath, _, files in os.walk(root / "chunks"):
        for name in files:
            os.utime(os.path.join(dirpath, name), (past, past))


def test_a_bad_default_data_mover_url_is_reported_by_a_system_check(settings):
    from repositories.checks import check_default_datamover_url

    settings.DEFAULT_DATAMOVER_URL = "127.0.0.1:8100"
    assert [e.id for e in check_default_datamover_url(None)] == ["repositories.E001"]
    settings.DEFAULT_DATAMOVER_URL = "http://127.0.0.1:8100"
    assert check_default_datamover_url(None) == []


@pytest.mark.integration
def test_an_encrypted_repository_is_served_with_its_key_from_the_record(live_env, tmp_path, output_dir,
                                                                        capsys):
    from repositories.store import DiskIndex, build_manifest, decode_chunk, encode_chunk

    port = free_port()
    (tmp_path / "pass").write_text("the repository passphrase\n")
    call_command("add_repository", "vault", "--path", str(tmp_path / "vault"), "--encrypt",
                 "--passphrase-file", str(tmp_path / "pass"), "--url", f"http://127.0.0.1:{port}")
    repository = Repository.objects.get(name="vault")
    key = repository.repository_key()
    block = compressible_block(3)
    digest = block_digest(block, key)
    with running(manage_py("datamover", "vault", "--workers", "1"), env=live_env,
                 log_path=output_dir / "datamover.log") as process:
        wait_for_port(port, process=process)
        with repository.client() as client:
            client.put_chunk(digest, encode_chunk(block, key))
            disk = DiskIndex(id="d", size=len(block), blocks=[digest])
            client.put_manifest(build_manifest("rp-1", "vm", [disk], ovf="<ovf/>", key=key))
            assert decode_chunk(client.get_chunk(digest), key) == block
            assert client.get_manifest("rp-1").read_ovf(key) == "<ovf/>"
        call_command("verify_repository", "vault", "--json")
    out = capsys.readouterr().out
    report = json.loads(out[out.index("{"):])  # after the add_repository lines
    assert report["ok"] and report["content_checked"] and report["chunks_checked"] == 1
    stored = (tmp_path / "vault" / chunk_name(digest)).read_bytes()
    assert block[:32] not in stored
