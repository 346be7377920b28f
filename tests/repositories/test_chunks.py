"""Chunk encoding: round trips, the byte layout, encryption and damage detection."""

import hashlib
import struct
import zlib

import pytest

from repositories.store import (
    BLOCK_SIZE,
    ChunkError,
    RepositoryKeyError,
    block_digest,
    decode_chunk,
    derive_key,
    encode_chunk,
    is_zero,
    new_kdf_parameters,
    unlock,
    verify_chunk,
)
from tests.repositories.conftest import compressible_block, random_block


@pytest.fixture(scope="module")
def key():
    return derive_key("correct horse battery staple", new_kdf_parameters())


@pytest.mark.parametrize("encrypted", [False, True])
@pytest.mark.parametrize("make", [random_block, lambda: compressible_block(1),
                                  lambda: bytes(BLOCK_SIZE), lambda: b"short last block"],
                         ids=["random", "compressible", "zero", "short"])
def test_a_block_comes_back_unchanged(make, encrypted, key):
    data = make()
    chunk_key = key if encrypted else None
    blob = encode_chunk(data, chunk_key)
    assert decode_chunk(blob, chunk_key) == data
    assert verify_chunk(block_digest(data, chunk_key), blob, chunk_key)


def test_compressible_blocks_shrink_and_random_ones_are_stored_raw():
    assert len(encode_chunk(compressible_block(2))) < BLOCK_SIZE // 10
    random = random_block()
    blob = encode_chunk(random)
    assert blob[5] == 0  # flags: neither compressed nor encrypted
    assert len(blob) == 32 + BLOCK_SIZE


def test_a_mostly_random_block_with_compressible_parts_is_still_compressed():
    # The incompressibility probe samples the block; one compressible sample is enough.
    quarter = BLOCK_SIZE // 4
    data = random_block(quarter) + compressible_block(2, quarter) + random_block(2 * quarter)
    blob = encode_chunk(data)
    assert blob[5] == 1  # flags: compressed
    assert len(blob) < BLOCK_SIZE * 0.8
    assert decode_chunk(blob) == data


def test_the_header_is_the_documented_layout():
    data = compressible_block(3)
    blob = encode_chunk(data)
    magic, version, flags, reserved, plain, payload, crc, nonce = struct.unpack(">4sBBHIII12s", blob[:32])
    assert (magic, version, flags, reserved, plain) == (b"VBRC", 1, 1, 0, BLOCK_SIZE)
    assert payload == len(blob) - 32 and nonce == bytes(12)
    assert crc == zlib.crc32(blob[32:])  # FORMAT.md's CRC-32, whichever library computes it


def test_the_digest_of_a_plain_block_is_its_sha256():
    data = compressible_block(4)
    assert block_digest(data) == hashlib.sha256(data).hexdigest()


def test_zero_blocks_are_recognised():
    assert is_zero(bytes(BLOCK_SIZE)) and is_zero(bytes(100))
    assert not is_zero(bytes(BLOCK_SIZE - 1) + b"\x01")


def test_encrypted_chunks_are_unreadable_without_the_key(key):
    data = compressible_block(5)
    blob = encode_chunk(data, key)
    assert data[:64] not in blob
    with pytest.raises(RepositoryKeyError):
        decode_chunk(blob)
    other = derive_key("another passphrase", new_kdf_parameters())
    with pytest.raises(ChunkError, match="wrong key"):
        decode_chunk(blob, other)


def test_encrypted_chunk_names_reveal_nothing_about_the_content(key):
    data = compressible_block(6)
    name = block_digest(data, key)
    assert name != hashlib.sha256(data).hexdigest()
    other = derive_key("another passphrase", new_kdf_parameters())
    assert block_digest(data, other) != name
    # The same block under the same key always gets the same name: dedup still works.
    assert block_digest(data, key) == name


@pytest.mark.parametrize("offset", [0, 8, 40, -1])
def test_a_flipped_byte_is_found(offset, key):
    for chunk_key in (None, key):
        data = compressible_block(7)
        blob = bytearray(encode_chunk(data, chunk_key))
        blob[offset] ^= 0x40
        with pytest.raises(ChunkError):
            verify_chunk(block_digest(data, chunk_key), bytes(blob), chunk_key)


def test_a_truncated_chunk_is_refused():
    blob = encode_chunk(random_block())
    with pytest.raises(ChunkError, match="payload is"):
        decode_chunk(blob[:-1000])


def test_a_chunk_under_the_wrong_name_is_refused():
    blob = encode_chunk(compressible_block(8))
    with pytest.raises(ChunkError, match="does not match its name"):
        verify_chunk(block_digest(compressible_block(9)), blob)


def test_a_wrong_passphrase_is_reported_clearly():
    parameters = new_kdf_parameters()
    key = derive_key("the right passphrase", parameters)
    assert unlock("the right passphrase", parameters, key.check_value) == key
    with pytest.raises(RepositoryKeyError, match="wrong passphrase"):
        unlock("the wrong passphrase", parameters, key.check_value)
