"""Manifests: building, the stored form, incremental indexes and malformed input."""

import json

import pytest

from repositories.store import (
    BLOCK_SIZE,
    DiskIndex,
    ManifestError,
    RepositoryKeyError,
    block_digest,
    build_manifest,
    derive_key,
    incremental_disk,
    new_kdf_parameters,
    parse_manifest,
    serialize_manifest,
)

A, B, C = (block_digest(bytes([n]) * 10) for n in (1, 2, 3))


def test_a_manifest_survives_serialization():
    disk = DiskIndex(id="disk-1", size=3 * BLOCK_SIZE + 512, name="root", checkpoint_id="cp-1")
    disk.set_block(0, A)
    disk.set_block(3, B)
    manifest = build_manifest("rp-1", "vm-1", [disk], vm_name="web", ovf="<ovf/>",
                              figures={"bytes_read": 10}, labels={"job": "nightly"})
    again = parse_manifest(serialize_manifest(manifest))
    assert again.to_dict() == manifest.to_dict()
    assert again.disk("disk-1").blocks == [A, None, None, B]
    assert again.digests() == {A, B}
    assert again.allocated_bytes() == BLOCK_SIZE + 512
    assert again.read_ovf() == "<ovf/>"


def test_an_incremental_copies_the_previous_index_and_replaces_changed_blocks():
    full = DiskIndex(id="d", size=4 * BLOCK_SIZE, blocks=[A, A, B, None])
    incremental = incremental_disk(full, changes={1: C, 2: None}, checkpoint_id="cp-2")
    assert incremental.blocks == [A, C, None, None]
    assert full.blocks == [A, A, B, None]  # the parent is untouched
    grown = incremental_disk(full, size=6 * BLOCK_SIZE, changes={5: C})
    assert grown.blocks == [A, A, B, None, None, C]
    manifest = build_manifest("rp-2", "vm", [incremental], parent="rp-1")
    assert manifest.type == "incremental" and manifest.parent == "rp-1"


def test_the_ovf_of_an_encrypted_repository_is_sealed():
    key = derive_key("passphrase for the ovf", new_kdf_parameters())
    manifest = build_manifest("rp-3", "vm", [], ovf="<ovf secret='yes'/>", key=key)
    stored = serialize_manifest(manifest)
    assert b"secret" not in stored
    with pytest.raises(RepositoryKeyError):
        parse_manifest(stored).read_ovf()
    assert parse_manifest(stored).read_ovf(key) == "<ovf secret='yes'/>"


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(format="other"), "not a manifest"),
    (lambda m: m["disks"][0]["blocks"].pop(), "index entries"),
    (lambda m: m["disks"][0]["blocks"].__setitem__(0, "nothex"), "bad chunk id"),
    (lambda m: m.update(id="../escape"), "bad manifest id"),
    (lambda m: m.pop("vm"), "malformed"),
])
def test_malformed_manifests_are_refused(change, message):
    disk = DiskIndex(id="d", size=2 * BLOCK_SIZE, blocks=[A, None])
    raw = json.loads(serialize_manifest(build_manifest("rp", "vm", [disk])))
    change(raw)
    with pytest.raises(ManifestError, match=message):
        parse_manifest(json.dumps(raw))


def test_a_block_outside_the_disk_is_refused():
    with pytest.raises(ManifestError, match="outside"):
        DiskIndex(id="d", size=BLOCK_SIZE).set_block(1, A)


def test_the_data_mover_takes_the_manifest_of_a_vm_with_tens_of_tebibytes_of_data():
    from repositories.datamover.app import MAX_MANIFEST_BODY

    def size(blocks: int) -> int:
        disk = DiskIndex(id="d", size=blocks * BLOCK_SIZE, blocks=[f"{i:064x}" for i in range(blocks)])
        return len(serialize_manifest(build_manifest("rp-size", "vm", [disk])))

    per_block = (size(2000) - size(1000)) / 1000
    sixteen_tib = 16 * 2**40 // BLOCK_SIZE
    assert size(1000) + per_block * sixteen_tib < MAX_MANIFEST_BODY  # 64 MiB stopped at ~3.8 TiB


def test_an_index_given_empty_is_not_taken_for_a_disk_of_zeros():
    assert DiskIndex(id="d", size=2 * BLOCK_SIZE).blocks == [None, None]  # none given: zeros
    with pytest.raises(ManifestError, match="needs 2 index entries"):
        DiskIndex(id="d", size=2 * BLOCK_SIZE, blocks=[]).check()
