"""The chunk store: deduplication, manifests written last, verify, garbage collection, immutability."""

import base64
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from repositories.store import (
    BLOCK_SIZE,
    ChunkError,
    ChunkStore,
    DiskIndex,
    EncryptionParameters,
    Immutable,
    MissingChunks,
    RepositoryKeyError,
    StoreError,
    block_digest,
    build_manifest,
    decode_chunk,
    derive_key,
    encode_chunk,
    incremental_disk,
    is_zero,
    new_kdf_parameters,
)
from repositories.store.maintenance import GarbageReport, _sweep, collect_garbage, verify
from repositories.store.store import chunk_name
from tests.repositories.conftest import compressible_block, random_block


def back_up(store: ChunkStore, manifest_id: str, vm_id: str, disk_bytes: bytes, key=None,
            parent=None, disk_id="disk-1"):
    """What a worker does: hash blocks, send the missing ones, write the manifest last."""
    disk = DiskIndex(id=disk_id, size=len(disk_bytes))
    blocks = {}
    for index in range(len(disk.blocks)):
        block = disk_bytes[index * BLOCK_SIZE:(index + 1) * BLOCK_SIZE]
        if not is_zero(block):
            digest = block_digest(block, key)
            disk.set_block(index, digest)
            blocks[digest] = block
    sent = 0
    for digest in store.missing(list(blocks)):
        store.put_chunk(digest, encode_chunk(blocks[digest], key))
        sent += 1
    store.put_manifest(build_manifest(manifest_id, vm_id, [disk], key=key, parent=parent))
    return sent


def restore(store: ChunkStore, manifest_id: str, key=None) -> bytes:
    disk = store.get_manifest(manifest_id).disks[0]
    parts = []
    for index, digest in enumerate(disk.blocks):
        length = min(BLOCK_SIZE, disk.size - index * BLOCK_SIZE)
        parts.append(bytes(length) if digest is None else decode_chunk(store.get_chunk(digest), key))
    return b"".join(parts)


def make_disk(*blocks: bytes) -> bytes:
    return b"".join(blocks)


def age(store: ChunkStore, seconds: float) -> None:
    """Make every chunk look written `seconds` ago."""
    past = time.time() - seconds
    for info in store.chunks():
        os.utime(store.backend.root / info.name, (past, past))


def test_a_disk_of_random_compressible_and_zero_data_comes_back(store):
    disk = make_disk(random_block(), compressible_block(1), bytes(BLOCK_SIZE), b"tail" * 1000)
    back_up(store, "rp-1", "vm-1", disk)
    assert restore(store, "rp-1") == disk
    assert store.stats()["chunks"] == 3  # the zero block is not stored


def test_blocks_are_stored_once_across_restore_points_and_vms(store):
    shared = compressible_block(2)
    first = make_disk(shared, random_block(), shared)
    assert back_up(store, "rp-1", "vm-1", first) == 2
    assert back_up(store, "rp-2", "vm-1", first) == 0  # unchanged disk: nothing sent
    other_vm = make_disk(random_block(), shared)
    assert back_up(store, "rp-3", "vm-2", other_vm) == 1  # only its own block
    stats = store.stats()
    assert stats["chunks"] == 3 and stats["manifests"] == 3
    assert stats["dedup_ratio"] > 2
    assert restore(store, "rp-3") == other_vm


def test_an_incremental_restore_point_is_a_complete_index(store):
    disk = make_disk(random_block(), compressible_block(3), random_block())
    back_up(store, "rp-1", "vm", disk)
    changed = compressible_block(4)
    digest = block_digest(changed)
    store.put_chunk(digest, encode_chunk(changed))
    parent = store.get_manifest("rp-1").disks[0]
    store.put_manifest(build_manifest("rp-2", "vm", [incremental_disk(parent, changes={1: digest})],
                                      parent="rp-1"))
    assert restore(store, "rp-2") == disk[:BLOCK_SIZE] + changed + disk[2 * BLOCK_SIZE:]
    assert restore(store, "rp-1") == disk


def test_a_manifest_that_names_a_missing_chunk_is_not_written(store):
    disk = DiskIndex(id="d", size=BLOCK_SIZE)
    disk.set_block(0, block_digest(b"never sent"))
    with pytest.raises(MissingChunks):
        store.put_manifest(build_manifest("rp-1", "vm", [disk]))
    assert store.manifest_ids() == []


def test_verify_finds_a_flipped_byte_and_names_the_restore_points_it_breaks(store):
    block = compressible_block(5)
    back_up(store, "rp-1", "vm-1", make_disk(block, random_block()))
    back_up(store, "rp-2", "vm-2", make_disk(block))
    back_up(store, "rp-3", "vm-3", make_disk(random_block()))
    assert verify(store).ok
    path = store.backend.root / chunk_name(block_digest(block))
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    path.write_bytes(bytes(damaged))
    report = verify(store)
    assert not report.ok
    assert list(report.corrupt) == [block_digest(block)]
    assert report.affected_manifests == ["rp-1", "rp-2"]


def test_verify_reports_a_missing_chunk(store):
    block = random_block()
    back_up(store, "rp-1", "vm", make_disk(block))
    (store.backend.root / chunk_name(block_digest(block))).unlink()
    report = verify(store)
    assert report.missing == [block_digest(block)] and report.affected_manifests == ["rp-1"]


def test_garbage_collection_removes_only_old_unreferenced_chunks(store):
    kept, dropped = compressible_block(6), compressible_block(7)
    back_up(store, "rp-1", "vm", make_disk(kept, dropped))
    back_up(store, "rp-2", "vm", make_disk(kept))
    store.delete_manifest("rp-1")
    assert collect_garbage(store, grace_seconds=3600).deleted == 0  # still young
    age(store, 7200)
    report = collect_garbage(store, grace_seconds=3600)
    assert (report.deleted, report.referenced) == (1, 1)
    assert restore(store, "rp-2") == kept
    assert not store.has_chunk(block_digest(dropped))


def test_garbage_collection_keeps_every_chunk_of_a_backup_in_flight(store):
    lease = store.open_lease("backup of vm-2", ttl=3600)
    old = compressible_block(8)
    back_up(store, "rp-old", "vm-1", make_disk(old))
    store.delete_manifest("rp-old")
    age(store, 7200)
    # The backup in flight has sent its chunks (one of them a dedup hit on the old
    # unreferenced chunk) but has not written its manifest yet.
    in_flight = [compressible_block(9), random_block()]
    digests = [block_digest(b) for b in in_flight] + [block_digest(old)]
    for digest in store.missing(digests):
        block = in_flight[digests.index(digest)]
        store.put_chunk(digest, encode_chunk(block))
    report = collect_garbage(store, grace_seconds=0)
    assert report.deleted == 0 and report.leases_open == 1
    assert store.missing(digests) == []
    disk = DiskIndex(id="d", size=3 * BLOCK_SIZE, blocks=digests)
    store.put_manifest(build_manifest("rp-new", "vm-2", [disk]))
    store.close_lease(lease["id"])
    assert verify(store).ok


def test_garbage_collection_with_a_damaged_manifest_deletes_nothing(store):
    back_up(store, "rp-1", "vm", make_disk(random_block()))
    (store.backend.root / "manifests" / "rp-1.json").write_text("{not json")
    age(store, 7200)
    with pytest.raises(StoreError):
        collect_garbage(store, grace_seconds=0)
    assert store.stats()["chunks"] == 1


def test_the_base_of_a_backup_in_progress_cant_be_deleted(store):
    back_up(store, "rp-1", "vm", make_disk(random_block()))
    lease = store.open_lease("incremental", manifests=["rp-1"])
    with pytest.raises(StoreError, match="backup in progress"):
        store.delete_manifest("rp-1")
    store.close_lease(lease["id"])
    store.delete_manifest("rp-1")


def test_an_immutable_restore_point_cant_be_deleted(tmp_path):
    store = ChunkStore.create(tmp_path / "immutable", immutable_days=7)
    back_up(store, "rp-1", "vm", make_disk(compressible_block(10)))
    with pytest.raises(Immutable, match="immutable until"):
        store.delete_manifest("rp-1")
    store.delete_manifest("rp-1", now=datetime.now(UTC) + timedelta(days=8))
    assert store.manifest_ids() == []


def test_an_encrypted_repository_refuses_plain_chunks_and_checks_content_with_its_key(tmp_path):
    parameters = new_kdf_parameters()
    key = derive_key("repository passphrase", parameters)
    store = ChunkStore.create(tmp_path / "encrypted", key=key, kdf_parameters=parameters)
    block = compressible_block(11)
    with pytest.raises(ChunkError, match="encrypted"):
        store.put_chunk(block_digest(block, key), encode_chunk(block))
    disk = make_disk(block, random_block())
    back_up(store, "rp-1", "vm", disk, key=key)
    assert restore(store, "rp-1", key) == disk
    # Without the key, the data mover still checks framing; names hide the content.
    keyless = ChunkStore.open(tmp_path / "encrypted")
    assert verify(keyless).ok and not verify(keyless).content_checked
    assert not keyless.has_chunk(block_digest(block))
    with pytest.raises(StoreError):
        ChunkStore.open(tmp_path / "encrypted", key=derive_key("wrong", parameters))


def test_a_gateway_creates_an_encrypted_repository_from_its_parameters_alone(tmp_path):
    parameters = new_kdf_parameters()
    key = derive_key("repository passphrase", parameters)
    text = EncryptionParameters.for_key(key, parameters).to_text()
    assert text.startswith("vbr-encryption-1:") and key.to_text() not in text
    store = ChunkStore.create(tmp_path / "gw", encryption=EncryptionParameters.from_text(text))
    assert store.encrypted and store.key is None
    assert store.config["kdf"] == parameters and store.config["key_check"] == key.check_value
    block = compressible_block(12)
    with pytest.raises(ChunkError, match="encrypted"):
        store.put_chunk(block_digest(block), encode_chunk(block))
    disk = make_disk(block)
    back_up(store, "rp-1", "vm", disk, key=key)  # the worker encrypts with the server's key
    assert restore(ChunkStore.open(tmp_path / "gw", key=key), "rp-1", key) == disk
    # Started again with the same parameters it serves the repository; with others, never.
    assert ChunkStore.create(tmp_path / "gw", encryption=EncryptionParameters.from_text(text)).encrypted
    other = derive_key("another passphrase", new_kdf_parameters())
    with pytest.raises(RepositoryKeyError, match="another key"):
        ChunkStore.create(tmp_path / "gw", encryption=EncryptionParameters.for_key(other, parameters))
    ChunkStore.create(tmp_path / "plain")
    with pytest.raises(RepositoryKeyError, match="unencrypted repository"):
        ChunkStore.create(tmp_path / "plain", encryption=EncryptionParameters.from_text(text))


@pytest.mark.parametrize("text", [
    "", "vbr-encryption-1:", "vbr-encryption-1:bm90IGpzb24=", "something else",
    "vbr-encryption-1:" + base64.urlsafe_b64encode(b'{"kdf": {"kdf": "scrypt"}, "key_check": "x"}').decode(),
])
def test_damaged_encryption_parameters_say_where_to_copy_them_from(text):
    with pytest.raises(RepositoryKeyError, match="copy them whole from add_repository"):
        EncryptionParameters.from_text(text)


def test_a_chunk_is_refused_when_its_content_doesnt_match_its_name(store):
    with pytest.raises(ChunkError):
        store.put_chunk(block_digest(b"one"), encode_chunk(b"two"))
    assert store.stats()["chunks"] == 0


def test_without_content_verification_damaged_chunks_are_still_refused_and_verify_finds_misnamed_ones(
        tmp_path):
    store = ChunkStore.create(tmp_path / "repository", verify_content=False)
    blob = encode_chunk(compressible_block(1))
    damaged = bytearray(blob)
    damaged[len(damaged) // 2] ^= 0x01
    with pytest.raises(ChunkError, match="checksum"):
        store.put_chunk(block_digest(compressible_block(1)), bytes(damaged))
    with pytest.raises(ChunkError, match="payload is"):
        store.put_chunk(block_digest(compressible_block(1)), blob[:-10])
    # A wrong name is trusted on put, then found by the next verify job.
    misnamed = block_digest(compressible_block(2))
    assert store.put_chunk(misnamed, blob)
    store.put_manifest(build_manifest("rp-1", "vm-1", [_one_block_disk(misnamed)]))
    report = verify(store)
    assert list(report.corrupt) == [misnamed] and report.affected_manifests == ["rp-1"]


def _one_block_disk(digest: str) -> DiskIndex:
    disk = DiskIndex(id="disk-1", size=BLOCK_SIZE)
    disk.set_block(0, digest)
    return disk


def test_a_folder_with_other_files_is_not_made_a_repository(tmp_path):
    (tmp_path / "data.txt").write_text("something")
    with pytest.raises(StoreError, match="not empty"):
        ChunkStore.create(tmp_path)


def test_stale_temporary_files_are_removed_by_garbage_collection(store):
    leftover = store.backend.root / "tmp" / "crashed.tmp"
    leftover.write_bytes(b"partial")
    past = time.time() - 7200
    os.utime(leftover, (past, past))
    report = collect_garbage(store, grace_seconds=3600)
    assert report.temporary_removed == 1 and not leftover.exists()


def test_shortening_the_immutability_later_doesnt_unlock_restore_points(tmp_path):
    store = ChunkStore.create(tmp_path / "immutable", immutable_days=30)
    back_up(store, "rp-1", "vm", make_disk(compressible_block(12)))
    relaxed = ChunkStore.open(tmp_path / "immutable", immutable_days=0)
    with pytest.raises(Immutable):
        relaxed.delete_manifest("rp-1", now=datetime.now(UTC) + timedelta(days=29))
    relaxed.delete_manifest("rp-1", now=datetime.now(UTC) + timedelta(days=31))


def test_a_backup_that_ends_while_garbage_collection_reads_the_manifests_keeps_its_chunks(store):
    lease = store.open_lease("backup of vm-3", ttl=3600)
    block = compressible_block(14)
    digest = block_digest(block)
    store.put_chunk(digest, encode_chunk(block))
    age(store, 7200)  # a long backup: its first chunks are older than the grace period
    listed = store.manifests

    def manifests():  # the mark is slow; meanwhile the backup writes its manifest and lets go
        yield from listed()
        store.put_manifest(build_manifest("rp-late", "vm-3", [DiskIndex(id="d", size=BLOCK_SIZE,
                                                                         blocks=[digest])]))
        store.close_lease(lease["id"])

    store.manifests = manifests
    report = collect_garbage(store, grace_seconds=0)
    assert report.deleted == 0
    assert verify(store).ok


def test_a_manifest_written_during_garbage_collection_keeps_its_old_chunks(store):
    block = compressible_block(13)
    back_up(store, "rp-parent", "vm", make_disk(block))
    store.delete_manifest("rp-parent")
    age(store, 7200)
    # An incremental copies its parent's index without asking for those chunks;
    # writing its manifest makes them young again before the sweep looks.
    disk = DiskIndex(id="d", size=BLOCK_SIZE, blocks=[block_digest(block)])
    store.put_manifest(build_manifest("rp-child", "vm", [disk]))
    referenced_at_mark: set = set()  # as if the mark ran before the manifest existed
    candidates = [i.name[-64:] for i in store.chunks() if i.name[-64:] not in referenced_at_mark]
    report = GarbageReport()
    _sweep(store, candidates, time.time() - 3600, False, report)
    assert report.deleted == 0 and report.kept_young == 1
    assert verify(store).ok


def test_a_patched_restore_point_keeps_its_chunks_through_garbage_collection_and_reads_back(store):
    from jobs.restore.blocks import read_blocks

    base, patch = compressible_block(8), random_block()[:64 * 1024]
    back_up(store, "rp-1", "vm", make_disk(base))
    disk = DiskIndex(id="disk-1", size=BLOCK_SIZE,
                     blocks=[{"base": block_digest(base), "patches": [[4096, len(patch), block_digest(patch)],
                                                                    [BLOCK_SIZE - 4096, 4096, None]]}])
    with pytest.raises(MissingChunks):  # the patch's chunk isn't stored yet
        store.put_manifest(build_manifest("rp-2", "vm", [disk], parent="rp-1"))
    store.put_chunk(block_digest(patch), encode_chunk(patch))
    store.put_manifest(build_manifest("rp-2", "vm", [disk], parent="rp-1"))
    store.delete_manifest("rp-1")  # the base chunk is now needed by rp-2's patched block only
    age(store, 7200)
    report = collect_garbage(store, grace_seconds=3600)
    assert (report.deleted, report.referenced) == (0, 2)
    expected = bytearray(base)
    expected[4096:4096 + len(patch)] = patch
    expected[BLOCK_SIZE - 4096:] = bytes(4096)

    class Client:  # the export reads chunks as it would from a data mover
        def get_chunk(self, digest):
            return store.get_chunk(digest)

    assert [bytes(b.data) for b in read_blocks(Client(), store.get_manifest("rp-2").disks[0])] == [expected]
    (store.backend.root / chunk_name(block_digest(patch))).unlink()
    report = verify(store)
    assert report.missing == [block_digest(patch)] and report.affected_manifests == ["rp-2"]
