"""export_disk: a restore point's disk to a local sparse raw or qcow2 file, no engine."""

import json
import subprocess
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from jobs.restore.export import export_disk
from jobs.restore.points import RestoreError
from tests.restore.points import SourceDisk, write_restore_point

MiB = 1024 * 1024
DISK_ID = "0b7e1d6a-1c2f-4c3e-9a55-6d2b8e0f4a11"


def qemu_io(image, command: str, image_format: str = "qcow2") -> None:
    subprocess.run(["qemu-io", "-f", image_format, "-c", command, str(image)], check=True,
                   capture_output=True)


@pytest.fixture
def source_image(tmp_path):
    """A qcow2 disk of 18.5 MiB (the last block short) with data, zeros and a partial block."""
    image = tmp_path / "source.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), str(18 * MiB + 512 * 1024)],
                   check=True)
    qemu_io(image, "write -P 0x5a 0 1M")
    qemu_io(image, "write -P 0x11 5M 64k")          # a block that is mostly zeros
    qemu_io(image, "write -P 0xc3 12M 3M")
    qemu_io(image, "write -P 0x7e 18M 512k")        # the short last block
    return image


@pytest.fixture
def point(repository, source_image, tmp_path):
    return write_restore_point(
        repository, vm_id="vm-1", vm_name="web1", folder=tmp_path,
        disks=[SourceDisk(DISK_ID, "web1_Disk1", source_image, "qcow2", "cow")])


def compare(a, a_format, b, b_format) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-img", "compare", "-f", a_format, "-F", b_format, str(a), str(b)],
                          capture_output=True, text=True)


def test_a_raw_export_equals_the_source_and_stays_sparse(point, source_image, tmp_path):
    output = tmp_path / "out.raw"
    seen = []

    result = export_disk(point, DISK_ID, output, progress=lambda done, total: seen.append((done, total)))

    assert compare(source_image, "qcow2", output, "raw").returncode == 0
    assert output.stat().st_size == 18 * MiB + 512 * 1024
    # Only the written runs take space (1 + 0.0625 + 3 + 0.5 MiB), not 18.5 MiB.
    assert output.stat().st_blocks * 512 < 6 * MiB
    assert result.bytes_written == 1 * MiB + 64 * 1024 + 3 * MiB + 512 * 1024
    assert seen[-1][0] == seen[-1][1] > 0


def test_a_qcow2_export_by_disk_name_equals_the_source(point, source_image, tmp_path):
    output = tmp_path / "out.qcow2"

    call_command("export_disk", str(point.pk), "web1_Disk1", str(output), "--format", "qcow2",
                 stdout=StringIO())

    assert compare(source_image, "qcow2", output, "qcow2").returncode == 0
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(output)],
                                     capture_output=True, check=True).stdout)
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == 18 * MiB + 512 * 1024
    assert info["actual-size"] < 8 * MiB


def test_a_change_in_the_source_after_the_backup_makes_the_export_differ(point, source_image,
                                                                       tmp_path):
    qemu_io(source_image, "write -P 0x01 8M 4k")
    output = tmp_path / "out.raw"

    export_disk(point, DISK_ID, output)

    assert compare(source_image, "qcow2", output, "raw").returncode == 1


def test_an_existing_output_file_is_refused_and_left_alone(point, tmp_path):
    output = tmp_path / "out.raw"
    output.write_text("keep me")

    with pytest.raises(CommandError, match="exists already"):
        call_command("export_disk", str(point.pk), DISK_ID, str(output), stdout=StringIO())

    assert output.read_text() == "keep me"


def test_unknown_points_and_disks_say_what_exists(point, tmp_path):
    with pytest.raises(CommandError, match="no restore point 999"):
        call_command("export_disk", "999", DISK_ID, str(tmp_path / "x"), stdout=StringIO())
    with pytest.raises(CommandError, match="web1_Disk1"):
        call_command("export_disk", str(point.pk), "nope", str(tmp_path / "x"), stdout=StringIO())


def test_a_damaged_chunk_fails_the_export_and_removes_the_partial_file(point, repository, tmp_path):
    from repositories.store import ChunkStore

    store = ChunkStore.open(repository.path)
    manifest = store.get_manifest(point.manifest_id)
    digest = next(d for d in manifest.disks[0].blocks if d)
    chunk = next(p for p in (tmp_path / "repository" / "chunks").rglob(digest))
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0xFF
    chunk.chmod(0o644)
    chunk.write_bytes(bytes(data))
    output = tmp_path / "out.raw"

    with pytest.raises(RestoreError, match="export of disk web1_Disk1 failed"):
        export_disk(point, DISK_ID, output)

    assert not output.exists()


def test_a_restore_point_being_read_cant_be_deleted_until_the_read_ends(point, tmp_path):
    # Retention running during a long export or restore would leave it missing chunks.
    from jobs.restore.points import held
    from repositories.datamover.client import DataMoverError

    with held(point, "export in progress"):
        with point.repository.client() as client, pytest.raises(DataMoverError, match="lease|leased|backup"):
            client.delete_manifest(point.manifest_id)
        assert export_disk(point, DISK_ID, tmp_path / "out.raw").bytes_written > 0
    with point.repository.client() as client:
        client.delete_manifest(point.manifest_id)  # the lease ended with the read
