"""A backup job into an encrypted repository on a gateway, set up as an administrator would.

add_repository makes the key on the backup server and prints the gateway's command;
the standalone data mover, started with that command, creates the repository from
the encryption parameters alone. Workers encrypt, so no key ever reaches the gateway.
"""

import shlex
import sys

import pytest
from django.core.management import call_command

from jobs import services
from jobs.choices import SessionState
from jobs.models import RestorePoint
from repositories import services as repository_services
from repositories.store import ChunkStore
from repositories.store.chunks import FLAG_AES_GCM
from tests.jobs.conftest import guest_image, images_equal, session_log, wait_for_session
from tests.support.processes import free_port, running, wait_for_port

pytestmark = pytest.mark.integration


def gateway_command(printed: str, port: int) -> list[str]:
    """The command add_repository printed for the gateway, run here on loopback."""
    line = next(line for line in printed.splitlines() if "python -m repositories.datamover" in line)
    args = shlex.split(line.split(": ", 1)[1])
    assert args[:3] == ["python", "-m", "repositories.datamover"]
    args[args.index("--bind") + 1] = f"127.0.0.1:{port}"  # servers here listen on loopback only
    return [sys.executable, *args[1:], "--workers", "1", "--threads", "4"]


@pytest.fixture
def repository(transactional_db, tmp_path, output_dir, capsys):
    from repositories.models import GatewayServer, Repository

    GatewayServer.objects.create(name="nas-gw", address="127.0.0.1")
    (tmp_path / "passphrase").write_text("a gateway passphrase\n")
    port = free_port()
    capsys.readouterr()
    call_command("add_repository", "vault", "--path", str(tmp_path / "nas" / "vault"), "--gateway", "nas-gw",
                 "--encrypt", "--passphrase-file", str(tmp_path / "passphrase"),
                 "--token-file", str(tmp_path / "token"), "--url", f"http://127.0.0.1:{port}")
    printed = capsys.readouterr().out
    record = Repository.objects.get(name="vault")
    assert record.encrypted and "--encryption vbr-encryption-1:" in printed
    assert record.key not in printed and "a gateway passphrase" not in printed
    with running(gateway_command(printed, port), log_path=output_dir / "gateway.log") as process:
        wait_for_port(port, process=process)
        yield record


def test_a_job_backs_up_into_an_encrypted_repository_on_a_gateway_and_the_disk_comes_back(
        stack, tmp_path, repository):
    store = ChunkStore.open(repository.path)
    assert store.encrypted and store.key is None
    assert store.config["key_check"] == repository.key_check
    assert repository_services.test_connection(repository.datamover_url, repository.token,
                           key_check=repository.key_check).ok

    job = stack.job("encrypted", ["small-vm1"])
    session = wait_for_session(services.run_job(job), stack=stack)
    assert session.state == SessionState.SUCCESS, session_log(session) + stack.logs()
    point = RestorePoint.objects.get(session=session)

    chunks = list(store.chunks())
    assert chunks, "the backup stored chunks on the gateway"
    assert all(store.get_chunk(c.name[-64:])[5] & FLAG_AES_GCM for c in chunks)
    for disk in point.disks:
        exported = tmp_path / f"{disk['name']}.raw"
        call_command("export_disk", str(point.pk), disk["name"], str(exported))
        assert images_equal(exported, guest_image(stack.sim, disk["id"], tmp_path / f"{disk['id']}.now"))
