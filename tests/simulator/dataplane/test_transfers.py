"""Image transfers through the real daemon, read and written with ovirt_imageio.client."""

import http.client
import ssl
import time

import pytest
from ovirt_imageio import client

from simulator.dataplane import DataPlaneError

from .conftest import MiB, processes_using, qemu_img_compare

SIZE = 32 * MiB


def open_download(dataplane, transfer_id, volume, fmt, **kwargs):
    return dataplane.open_transfer(transfer_id, volume, fmt, "download", kwargs.pop("as_", "raw"),
                                   SIZE, 300, 60, **kwargs)


@pytest.mark.parametrize("fmt", ["raw", "cow"])
def test_a_download_equals_the_volume(dataplane, tmp_path, ca_file, fmt):
    volume = tmp_path / f"disk.{fmt}"
    dataplane.seed_volume(volume, fmt, SIZE, seed=3, allocated_fraction=0.4)
    endpoint = open_download(dataplane, "t-down", volume, fmt)

    target = tmp_path / "download.qcow2"
    client.download(endpoint.transfer_url, str(target), ca_file, fmt="qcow2")
    dataplane.close_transfer("t-down")

    assert qemu_img_compare(volume, target).returncode == 0


def test_a_download_over_tls_only_equals_the_volume(dataplane, tmp_path, ca_file):
    """The relay address is not local to the client, so it can't switch to the unix socket."""
    volume = tmp_path / "disk.cow"
    dataplane.seed_volume(volume, "cow", SIZE, seed=4, allocated_fraction=0.3)
    dataplane.drop_connections_after(None, 10**12)
    endpoint = open_download(dataplane, "t-tls", volume, "cow")
    assert endpoint.transfer_url.startswith("https://127.0.0.2:")

    target = tmp_path / "download.raw"
    client.download(endpoint.transfer_url, str(target), ca_file, fmt="raw")
    dataplane.close_transfer("t-tls")

    assert qemu_img_compare(volume, target).returncode == 0


def test_extents_show_the_holes(dataplane, tmp_path, ca_file):
    volume = tmp_path / "disk.raw"
    dataplane.create_volume(volume, "raw", SIZE)
    dataplane.guest_write(volume, "raw", 4 * MiB, 2 * MiB, seed=1)
    endpoint = open_download(dataplane, "t-ext", volume, "raw")

    with client.ImageioClient(endpoint.transfer_url, cafile=ca_file) as image:
        extents = [(e.start, e.length, e.zero) for e in image.extents("zero")]
    dataplane.close_transfer("t-ext")

    data = [(start, length) for start, length, zero in extents if not zero]
    # qemu-img create allocates a raw file's first 4 KiB (qemu probes alignment there).
    assert data in ([(4 * MiB, 2 * MiB)], [(0, 4096), (4 * MiB, 2 * MiB)])
    assert sum(length for _, length, _ in extents) == SIZE


@pytest.mark.parametrize("fmt", ["raw", "cow"])
def test_an_upload_reads_back_identical(dataplane, tmp_path, ca_file, fmt):
    source = tmp_path / "source.qcow2"
    dataplane.seed_volume(source, "cow", SIZE, seed=9, allocated_fraction=0.5)
    volume = tmp_path / f"new.{fmt}"
    dataplane.create_volume(volume, fmt, SIZE)
    endpoint = dataplane.open_transfer("t-up", volume, fmt, "upload", "raw", SIZE, 300, 60)

    client.upload(str(source), endpoint.transfer_url, ca_file)
    dataplane.close_transfer("t-up")

    assert qemu_img_compare(source, volume).returncode == 0
    # Zero areas were not written: the new volume stays sparse.
    assert dataplane.volume_info(volume)["actual_size"] < SIZE * 0.7


def test_a_cow_download_moves_the_qcow2_file_itself(dataplane, tmp_path, ca_file):
    volume = tmp_path / "disk.cow"
    dataplane.seed_volume(volume, "cow", SIZE, seed=5, allocated_fraction=0.2)
    endpoint = open_download(dataplane, "t-cow", volume, "cow", as_="cow")

    target = tmp_path / "copy.qcow2"
    client.download(endpoint.transfer_url, str(target), ca_file, fmt="raw")
    dataplane.close_transfer("t-cow")

    assert target.read_bytes().rstrip(b"\0") == volume.read_bytes().rstrip(b"\0")


def test_activity_counts_the_bytes_read(dataplane, tmp_path, ca_file):
    volume = tmp_path / "disk.raw"
    dataplane.seed_volume(volume, "raw", SIZE, seed=2, allocated_fraction=1.0)
    endpoint = open_download(dataplane, "t-act", volume, "raw")
    assert dataplane.transfer_activity("t-act") == {
        "transferred": 0, "idle_seconds": pytest.approx(0, abs=2), "active": False}

    with client.ImageioClient(endpoint.transfer_url, cafile=ca_file) as image:
        image.read(0, bytearray(MiB))

    # The daemon books an operation's bytes just after it has sent the answer.
    deadline = time.monotonic() + 10
    activity = dataplane.transfer_activity("t-act")
    while activity["transferred"] < MiB and time.monotonic() < deadline:
        time.sleep(0.05)
        activity = dataplane.transfer_activity("t-act")
    assert activity["transferred"] == MiB
    assert activity["active"] is False
    dataplane.close_transfer("t-act")


def test_a_closed_transfer_is_refused_and_its_export_gone(dataplane, tmp_path, ca_file):
    volume = tmp_path / "disk.raw"
    dataplane.create_volume(volume, "raw", SIZE)
    endpoint = open_download(dataplane, "t-gone", volume, "raw")
    dataplane.close_transfer("t-gone")

    assert processes_using(dataplane.sock_dir) == []
    con = http.client.HTTPSConnection(
        "127.0.0.1", dataplane.port, context=ssl.create_default_context(cafile=ca_file))
    con.request("GET", f"/images/{endpoint.ticket_id}", headers={"Range": "bytes=0-511"})
    assert con.getresponse().status == 403
    con.close()


def test_a_second_transfer_with_the_same_id_is_refused(dataplane, tmp_path):
    volume = tmp_path / "disk.raw"
    dataplane.create_volume(volume, "raw", SIZE)
    open_download(dataplane, "t-dup", volume, "raw")
    with pytest.raises(DataPlaneError, match="open already"):
        open_download(dataplane, "t-dup", volume, "raw")
    dataplane.close_transfer("t-dup")


def test_a_transfer_can_be_opened_again_with_its_ticket(dataplane, tmp_path, ca_file):
    volume = tmp_path / "disk.raw"
    dataplane.seed_volume(volume, "raw", SIZE, seed=1, allocated_fraction=0.5)
    first = open_download(dataplane, "t-again", volume, "raw")
    dataplane.stop()
    dataplane.start()

    again = open_download(dataplane, "t-again", volume, "raw", ticket_id=first.ticket_id)

    assert again.ticket_id == first.ticket_id
    with client.ImageioClient(again.transfer_url, cafile=ca_file) as image:
        assert image.size() == SIZE
    dataplane.close_transfer("t-again")


def test_connections_drop_after_the_armed_number_of_bytes(dataplane, tmp_path, ca_file):
    volume = tmp_path / "disk.raw"
    dataplane.seed_volume(volume, "raw", SIZE, seed=8, allocated_fraction=1.0)
    endpoint = open_download(dataplane, "t-drop", volume, "raw")
    dataplane.drop_connections_after("t-drop", 2 * MiB)
    assert dataplane.list_faults()[0]["nbytes"] == 2 * MiB
    cut = dataplane.endpoint("t-drop")
    assert cut.transfer_url != endpoint.transfer_url

    with pytest.raises(Exception):  # noqa: B017 - the client raises whatever the socket gives
        client.download(cut.transfer_url, str(tmp_path / "cut.raw"), ca_file, fmt="raw")

    dataplane.clear_faults()
    assert dataplane.list_faults() == []
    assert dataplane.endpoint("t-drop") == endpoint
    client.download(endpoint.transfer_url, str(tmp_path / "whole.raw"), ca_file, fmt="raw")
    dataplane.close_transfer("t-drop")
    assert qemu_img_compare(volume, tmp_path / "whole.raw").returncode == 0


def test_a_cow_upload_writes_the_qcow2_file_as_sent(dataplane, tmp_path, ca_file):
    source = tmp_path / "source.qcow2"
    dataplane.seed_volume(source, "cow", SIZE, seed=6, allocated_fraction=0.3)
    sent = source.read_bytes()
    volume = tmp_path / "new.cow"
    dataplane.create_volume(volume, "cow", SIZE)
    endpoint = dataplane.open_transfer("t-cow-up", volume, "cow", "upload", "cow", len(sent),
                                       300, 60)

    with client.ImageioClient(endpoint.transfer_url, cafile=ca_file) as image:
        image.write(0, sent)
        image.flush()
    dataplane.close_transfer("t-cow-up")

    assert qemu_img_compare(source, volume).returncode == 0


def test_closing_twice_is_no_error(dataplane, tmp_path):
    volume = tmp_path / "disk.raw"
    dataplane.create_volume(volume, "raw", SIZE)
    open_download(dataplane, "t-twice", volume, "raw")
    dataplane.close_transfer("t-twice")
    dataplane.close_transfer("t-twice")
    dataplane.close_transfer("never-opened")


def test_one_layer_of_a_chain_can_be_exported_alone(dataplane, tmp_path, ca_file):
    base, top = tmp_path / "base.cow", tmp_path / "top.cow"
    dataplane.seed_volume(base, "cow", SIZE, seed=1, allocated_fraction=1.0)
    dataplane.create_volume(top, "cow", SIZE, backing=base)
    dataplane.guest_write(top, "cow", 2 * MiB, MiB, seed=2)
    endpoint = dataplane.open_transfer("t-layer", top, "cow", "download", "raw", SIZE, 300, 60,
                                       whole_chain=False)

    with client.ImageioClient(endpoint.transfer_url, cafile=ca_file) as image:
        data = [(e.start, e.length) for e in image.extents("zero") if not e.zero]
        buffer = bytearray(MiB)
        image.read(0, buffer)
    dataplane.close_transfer("t-layer")

    assert data == [(2 * MiB, MiB)]
    assert not any(buffer)  # the base's data does not show through


def test_a_counted_drop_fault_cuts_only_that_many_connections(dataplane, tmp_path, ca_file):
    volume = tmp_path / "disk.raw"
    dataplane.seed_volume(volume, "raw", SIZE, seed=8, allocated_fraction=1.0)
    dataplane.drop_connections_after(None, MiB, count=1)
    endpoint = open_download(dataplane, "t-count", volume, "raw")
    buffer = bytearray(4 * MiB)

    with pytest.raises((OSError, RuntimeError)), \
            client.ImageioClient(endpoint.transfer_url, cafile=ca_file) as image:
        image.read(0, buffer)
    with client.ImageioClient(endpoint.transfer_url, cafile=ca_file) as image:
        image.read(0, buffer)
    dataplane.close_transfer("t-count")
    assert bytes(buffer) == volume.read_bytes()[:4 * MiB]
