"""The disk movers against a real imageio daemon (the simulator's data plane) and a real data mover."""

import subprocess

import pytest

from repositories.store import BLOCK_SIZE, block_digest, decode_chunk, is_zero
from repositories.store.patches import read_entry
from tests.workers.conftest import MIB, blocks_of, raw_image
from workers.runtime import (
    Cancelled,
    ImageioClient,
    ImageioError,
    MoverError,
    NullMonitor,
    TicketGone,
    backup_disk,
    restore_disk,
)

SIZE = 25 * MIB  # not a multiple of the block size: the last block is short


class Recorder(NullMonitor):
    """Keeps every progress report; cancels from the ``cancel_at``-th question on."""

    def __init__(self, cancel_at: int | None = None):
        self.reports: list[tuple[int, int, float]] = []
        self.cancel_at, self.asked = cancel_at, 0

    def progress(self, done, total, rate, figures=None):
        self.reports.append((done, total, rate))

    def should_cancel(self):
        self.asked += 1
        return self.cancel_at is not None and self.asked >= self.cancel_at


def full_backup(plane, mover, volume, monitor=None, connections=4):
    transfer_id, url = plane.transfer(volume, "download", size=SIZE)
    source = ImageioClient(url, ca_pem=plane.ca_pem)
    try:
        with mover.client() as client:
            return backup_disk(source, client, None, disk_id="disk-1", disk_name="disk one",
                               connections=connections, monitor=monitor or NullMonitor())
    finally:
        plane.dp.close_transfer(transfer_id)


def assert_index_matches(index, image: bytes):
    assert index.size == len(image)
    for number, block in enumerate(blocks_of(image)):
        expected = None if is_zero(block) else block_digest(block)
        assert index.blocks[number] == expected, f"block {number}"


def test_a_full_backup_stores_every_data_block_and_no_zero_block(plane, mover, tmp_path):
    volume = plane.disk("full", SIZE, seed=3, allocated=0.5)
    monitor = Recorder()
    result = full_backup(plane, mover, volume, monitor)
    image = raw_image(volume, "cow", tmp_path / "full.raw")
    assert_index_matches(result.index, image)
    data_blocks = [b for b in blocks_of(image) if not is_zero(b)]
    store = mover.store()
    stored = {d for d in result.index.blocks if d}
    assert store.missing(sorted(stored)) == []
    for digest in stored:
        assert block_digest(decode_chunk(store.get_chunk(digest))) == digest
    figures = result.figures
    assert figures["blocks_sent"] == len(stored) <= len(data_blocks)
    assert figures["bytes_read"] < SIZE  # the zero extents were never read
    assert figures["zero_bytes"] >= SIZE - figures["bytes_read"]
    assert monitor.reports[-1][0] == monitor.reports[-1][1] == figures["bytes_read"]


def test_a_second_full_backup_sends_nothing_new(plane, mover):
    volume = plane.disk("again", SIZE, seed=4)
    first = full_backup(plane, mover, volume)
    second = full_backup(plane, mover, volume)
    assert second.index.blocks == first.index.blocks
    assert second.figures["blocks_sent"] == 0
    assert second.figures["blocks_deduplicated"] == first.figures["blocks_sent"]


def test_a_restore_writes_back_the_same_disk(plane, mover, tmp_path):
    volume = plane.disk("source", SIZE, seed=5, allocated=0.6)
    result = full_backup(plane, mover, volume)
    target = plane.disk("target", SIZE)
    transfer_id, url = plane.transfer(target, "upload", size=SIZE)
    with mover.client() as client:
        figures = restore_disk(ImageioClient(url, ca_pem=plane.ca_pem), client, None,
                               result.index, monitor=NullMonitor())
    plane.dp.close_transfer(transfer_id)
    assert figures["bytes_written"] == result.index.allocated_bytes()
    assert figures["bytes_zeroed"] == 0  # a new sparse disk reads as zeros already
    compare = subprocess.run(["qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", str(volume),
                              str(target)], capture_output=True, text=True)
    assert compare.returncode == 0, compare.stdout + compare.stderr


def test_a_restore_refuses_a_chunk_stored_under_another_blocks_name(plane, mover, tmp_path):
    # The data mover trusts workers' chunk names by default: a restore must not.
    from repositories.store import encode_chunk

    volume = plane.disk("misnamed", SIZE, seed=8, allocated=1.0)
    result = full_backup(plane, mover, volume)
    index = result.index
    victim = next(i for i, d in enumerate(index.blocks) if d is not None)
    index.blocks[victim] = block_digest(b"y" * BLOCK_SIZE)  # the name of other content
    with mover.client() as client:
        client.put_chunk(index.blocks[victim], encode_chunk(b"x" * BLOCK_SIZE))  # accepted as named
        target = plane.disk("misnamed-target", SIZE)
        transfer_id, url = plane.transfer(target, "upload", size=SIZE)
        with pytest.raises(MoverError, match="does not match its name"):
            restore_disk(ImageioClient(url, ca_pem=plane.ca_pem), client, None, index, monitor=NullMonitor())
    plane.dp.close_transfer(transfer_id)


def test_a_restore_zeroes_what_the_target_held(plane, mover, tmp_path):
    volume = plane.disk("sparse-source", SIZE, seed=6, allocated=0.3)
    result = full_backup(plane, mover, volume)
    target = plane.disk("dirty-target", SIZE, seed=7, allocated=1.0)
    transfer_id, url = plane.transfer(target, "upload", size=SIZE)
    with mover.client() as client:
        figures = restore_disk(ImageioClient(url, ca_pem=plane.ca_pem), client, None,
                               result.index, monitor=NullMonitor())
    plane.dp.close_transfer(transfer_id)
    assert figures["bytes_zeroed"] > 0
    assert raw_image(target, "cow", tmp_path / "t.raw") == raw_image(volume, "cow", tmp_path / "s.raw")


def test_an_incremental_reads_only_the_dirty_blocks(plane, mover, tmp_path):
    volume = plane.disk("incremental", SIZE, seed=8)
    full = full_backup(plane, mover, volume)
    plane.dp.add_bitmap(volume, "checkpoint-1")
    plane.dp.guest_write(volume, "cow", 7 * MIB + 4096, MIB, seed=99)
    # The guest zeroes 128 KiB of block 3 (a patch of zeros, no chunk) ...
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -z {12 * MIB} {128 * 1024}", str(volume)],
                   check=True, capture_output=True)
    # ... and rewrites block 4 nearly whole (read whole again).
    plane.dp.guest_write(volume, "cow", 16 * MIB, 3 * MIB, seed=98)
    transfer_id, url = plane.transfer(volume, "download", size=SIZE, dirty_bitmap="checkpoint-1")
    with mover.client() as client:
        result = backup_disk(ImageioClient(url, ca_pem=plane.ca_pem), client, None,
                             disk_id="disk-1", base=full.index, monitor=NullMonitor())
    plane.dp.close_transfer(transfer_id)
    assert result.figures["extents_context"] == "dirty"
    # The write spans blocks 1 and 2: only its dirty ranges (64 KiB granules) are read,
    # and stored as patches over the full's blocks.
    assert result.figures["bytes_read"] == MIB + 64 * 1024 + 128 * 1024 + BLOCK_SIZE
    assert result.figures["blocks_patched"] == 3
    # Its two pieces follow each other on the disk: one request reads both (three in all).
    assert result.figures["blocks_read"] == 4 and result.figures["read_requests"] == 3
    patched_blocks = {b: e for b, e in enumerate(result.index.blocks) if isinstance(e, dict)}
    assert sorted(patched_blocks) == [1, 2, 3]
    assert patched_blocks[3]["patches"] == [[0, 128 * 1024, None]]
    image = raw_image(volume, "cow", tmp_path / "inc.raw")
    assert_index_reads_back(result.index, image, mover.store())
    # The worker's restore composes the patched blocks back into the same disk.
    target = plane.disk("incremental-target", SIZE)
    transfer_id, url = plane.transfer(target, "upload", size=SIZE)
    with mover.client() as client:
        restore_disk(ImageioClient(url, ca_pem=plane.ca_pem), client, None, result.index,
                     monitor=NullMonitor())
    plane.dp.close_transfer(transfer_id)
    assert raw_image(target, "cow", tmp_path / "restored.raw") == image


def assert_index_reads_back(index, image: bytes, store):
    def read(digest, length):
        data = decode_chunk(store.get_chunk(digest))
        assert len(data) == length and block_digest(data) == digest
        return data

    assert index.size == len(image)
    for number, block in enumerate(blocks_of(image)):
        data = read_entry(index.blocks[number], len(block), read)
        assert (data or bytes(len(block))) == block, f"block {number}"


def test_a_dropped_imageio_connection_is_retried_without_damage(plane, mover, tmp_path):
    volume = plane.disk("flaky", SIZE, seed=9, allocated=0.8)
    transfer_id, _ = plane.transfer(volume, "download", size=SIZE)
    plane.dp.drop_connections_after(transfer_id, 6 * MIB, count=3)
    url = plane.dp.endpoint(transfer_id).transfer_url
    with mover.client() as client:
        result = backup_disk(ImageioClient(url, ca_pem=plane.ca_pem, backoff=0.1), client, None,
                             disk_id="disk-1", monitor=NullMonitor())
    assert result.figures["retried_requests"] >= 1
    assert_index_matches(result.index, raw_image(volume, "cow", tmp_path / "flaky.raw"))


class ClosesWhenRead(Recorder):
    """Closes the transfer the moment the backup says it has read everything, as a driver
    finalizes it then: no read may come after."""

    def __init__(self, close):
        super().__init__()
        self.close, self.told = close, 0

    def reads_done(self):
        self.told += 1
        self.close()


def test_a_backup_says_once_when_it_has_read_everything_and_needs_the_transfer_no_more(
        plane, mover, tmp_path):
    volume = plane.disk("closed", SIZE, seed=14, allocated=0.9)
    transfer_id, url = plane.transfer(volume, "download", size=SIZE)
    monitor = ClosesWhenRead(lambda: plane.dp.close_transfer(transfer_id))
    with mover.client() as client:
        result = backup_disk(ImageioClient(url, ca_pem=plane.ca_pem), client, None, disk_id="disk-1",
                             connections=2, monitor=monitor)
    assert monitor.told == 1
    assert_index_matches(result.index, raw_image(volume, "cow", tmp_path / "closed.raw"))
    assert mover.store().missing(sorted({d for d in result.index.blocks if d})) == []


def test_a_cancelled_backup_stops_and_says_so(plane, mover):
    volume = plane.disk("cancel", SIZE, seed=10, allocated=0.9)
    monitor = Recorder(cancel_at=2)  # the 1st question comes while extents are read
    with pytest.raises(Cancelled):
        full_backup(plane, mover, volume, monitor, connections=1)
    assert monitor.asked == 2


def test_a_ticket_that_is_gone_fails_clearly(plane, mover):
    volume = plane.disk("gone", SIZE, seed=11)
    transfer_id, url = plane.transfer(volume, "download", size=SIZE)
    plane.dp.close_transfer(transfer_id)
    with mover.client() as client, pytest.raises(TicketGone, match="no longer valid"):
        backup_disk(ImageioClient(url, ca_pem=plane.ca_pem), client, None, disk_id="d",
                    monitor=NullMonitor())


def test_an_encrypted_repository_gets_keyed_digests_and_sealed_chunks(plane, tmp_path, output_dir):
    from repositories.store import RepositoryKey
    from repositories.store.chunks import FLAG_AES_GCM, HEADER
    from tests.workers.conftest import running_mover

    key = RepositoryKey(bytes(range(32)))
    volume = plane.disk("secret", SIZE, seed=12)
    with running_mover(tmp_path / "enc", output_dir / "enc.log", key=key) as mover:
        transfer_id, url = plane.transfer(volume, "download", size=SIZE)
        with mover.client() as client:
            result = backup_disk(ImageioClient(url, ca_pem=plane.ca_pem), client, key,
                                 disk_id="d", monitor=NullMonitor())
        plane.dp.close_transfer(transfer_id)
        image = raw_image(volume, "cow", tmp_path / "secret.raw")
        store = mover.store(key=key)
        for number, block in enumerate(blocks_of(image)):
            digest = result.index.blocks[number]
            if is_zero(block):
                assert digest is None
                continue
            assert digest == block_digest(block, key) != block_digest(block)
            blob = store.get_chunk(digest)
            assert HEADER.unpack_from(blob)[2] & FLAG_AES_GCM and block[:64] not in blob
        target = plane.disk("secret-restored", SIZE)
        transfer_id, url = plane.transfer(target, "upload", size=SIZE)
        with mover.client() as client:
            restore_disk(ImageioClient(url, ca_pem=plane.ca_pem), client, key, result.index,
                         monitor=NullMonitor())
        plane.dp.close_transfer(transfer_id)
    assert raw_image(target, "cow", tmp_path / "restored.raw") == image


def test_a_data_mover_restart_mid_backup_is_retried_without_damage(plane, tmp_path, output_dir):
    import threading
    from urllib.parse import urlsplit

    from tests.workers.conftest import running_mover

    volume = plane.disk("restart", SIZE, seed=13, allocated=0.9)
    transfer_id, url = plane.transfer(volume, "download", size=SIZE)
    outcome = {}
    with running_mover(tmp_path / "m", output_dir / "m1.log") as mover:
        port = urlsplit(mover.url).port
        client = mover.client(backoff=0.5, retries=6)

        def run():
            try:
                outcome["result"] = backup_disk(ImageioClient(url, ca_pem=plane.ca_pem), client, None,
                                                disk_id="d", monitor=NullMonitor(), max_rate=6e6)
            except Exception as exc:  # noqa: BLE001 - reported below
                outcome["error"] = exc

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(1.5)
    # The data mover is down here (stopped by the block) until it starts again on its port.
    assert thread.is_alive(), "the backup ended before the data mover went down"
    with running_mover(tmp_path / "m", output_dir / "m2.log", port=port) as mover:
        thread.join(120)
        assert "error" not in outcome, outcome.get("error")
        result = outcome["result"]
        stored = mover.store()
        assert stored.missing(sorted({d for d in result.index.blocks if d})) == []
    plane.dp.close_transfer(transfer_id)
    assert_index_matches(result.index, raw_image(volume, "cow", tmp_path / "restart.raw"))


def test_a_local_daemon_is_read_over_its_unix_socket_and_a_remote_one_over_tls(plane):
    volume = plane.disk("local", SIZE, seed=14)
    transfer_id, url = plane.transfer(volume, "download", size=SIZE)
    local = ImageioClient(url, ca_pem=plane.ca_pem)
    with local.connect() as connection:
        assert len(connection.read(0, 4096)) == 4096
    assert local.unix_socket
    plane.dp.drop_connections_after(transfer_id, 1 << 40)  # a relay on 127.0.0.2: not this host
    remote = ImageioClient(plane.dp.endpoint(transfer_id).transfer_url, ca_pem=plane.ca_pem)
    with remote.connect() as connection:
        assert len(connection.read(0, 4096)) == 4096
    assert remote.unix_socket is None
    untrusted = ImageioClient(url, ca_pem=None)  # the system's CAs don't know the simulator's
    with untrusted.connect() as connection, pytest.raises(ImageioError, match="not trusted"):
        connection.read(0, 4096)
    assert untrusted.unix_socket is None  # never skips the TLS check
    plane.dp.close_transfer(transfer_id)


def test_errors_never_carry_the_transfer_ticket(plane):
    from workers.runtime.imageio import without_ticket

    volume = plane.disk("ticket", SIZE, seed=14)
    transfer_id, url = plane.transfer(volume, "download", size=SIZE)
    ticket = url.rsplit("/", 1)[1]
    assert without_ticket(url).endswith("/images/…")
    # A read past the end of the disk: imageio answers with an error status.
    with ImageioClient(url, ca_pem=plane.ca_pem, prefer_unix_socket=False).connect() as connection, \
            pytest.raises(ImageioError) as caught:
        connection.read(SIZE + 4096, 4096)
    plane.dp.close_transfer(transfer_id)
    assert "imageio answered" in str(caught.value) and ticket not in str(caught.value)
    with pytest.raises(ImageioError) as bad_url:
        ImageioClient(f"ftp://host1/images/{ticket}")
    assert ticket not in str(bad_url.value)


def test_a_daemon_is_probed_once_and_a_socket_that_stopped_answering_is_given_up(plane):
    from workers.runtime import imageio

    volume = plane.disk("probed", SIZE, seed=15)
    transfer_id, url = plane.transfer(volume, "download", size=SIZE)
    first = ImageioClient(url, ca_pem=plane.ca_pem)
    with first.connect() as connection:
        connection.read(0, 4096)
    place = first._daemon
    assert imageio._daemons[place] == first.unix_socket  # learnt: the next transfer skips the probe
    imageio._daemons[place] = "\0vbr-test-no-such-socket"  # the daemon moved since
    second = ImageioClient(url, ca_pem=plane.ca_pem)
    with second.connect() as connection:
        assert len(connection.read(0, 4096)) == 4096  # over TLS at once, no attempt used up
        assert connection.retried == 0
    assert second.unix_socket is None and place not in imageio._daemons
    plane.dp.close_transfer(transfer_id)
