"""Repository keys: a passphrase, through scrypt, gives the 32-byte repository key.

Two subkeys are derived from it with HKDF-SHA-256 so that the same secret never
serves two purposes: one names chunks (HMAC-SHA-256), one encrypts them
(AES-256-GCM). A key check value, stored in the repository's config and in the
database, tells a wrong passphrase from a damaged repository.
"""

import base64
import functools
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from repositories.store.errors import RepositoryKeyError

KEY_SIZE = 32
# scrypt cost: about 32 MiB and a tenth of a second, once per key derivation.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1


def _subkey(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=b"vbr-repository",
                info=purpose).derive(master)


@dataclass(frozen=True)
class RepositoryKey:
    """The key of an encrypted repository and its derived subkeys."""

    master: bytes = field(repr=False)

    def __post_init__(self):
        if len(self.master) != KEY_SIZE:
            raise RepositoryKeyError(f"a repository key is {KEY_SIZE} bytes, got {len(self.master)}")

    @functools.cached_property
    def id_key(self) -> bytes:
        """Keys the HMAC that names chunks."""
        return _subkey(self.master, b"chunk-id")

    @functools.cached_property
    def encryption_key(self) -> bytes:
        """The AES-256-GCM key of chunk payloads and sealed manifest fields."""
        return _subkey(self.master, b"chunk-encryption")

    @property
    def check_value(self) -> str:
        """A value that identifies the key without revealing it."""
        return hmac.new(self.master, b"vbr key check", hashlib.sha256).hexdigest()[:32]

    def to_text(self) -> str:
        """The key as text, for storage in an encrypted database field."""
        return base64.b64encode(self.master).decode()

    @classmethod
    def from_text(cls, text: str) -> "RepositoryKey":
        """The key from its text form."""
        try:
            return cls(base64.b64decode(text.encode(), validate=True))
        except ValueError:
            raise RepositoryKeyError("the stored repository key is not valid base64") from None


@functools.lru_cache(maxsize=16)
def _key_from_bytes(master: bytes) -> RepositoryKey:
    return RepositoryKey(master)


def as_key(key: "RepositoryKey | bytes | None") -> RepositoryKey | None:
    """Accept a RepositoryKey, its 32 raw bytes, or None (no encryption)."""
    if key is None or isinstance(key, RepositoryKey):
        return key
    return _key_from_bytes(bytes(key))


def new_kdf_parameters() -> dict:
    """Fresh scrypt parameters (with a random salt) for a new repository."""
    return {"kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
            "salt": base64.b64encode(os.urandom(16)).decode()}


ENCRYPTION_TEXT_PREFIX = "vbr-encryption-1:"


@dataclass(frozen=True)
class EncryptionParameters:
    """How a repository's key is derived (KDF parameters) and its key check value. No secret.

    The backup server derives the key of a repository on a gateway; the gateway's
    data mover gets only these, as one line of text (``to_text``), to create the
    repository there: the passphrase and the key never reach the gateway.
    """

    kdf: dict
    key_check: str

    @classmethod
    def for_key(cls, key: RepositoryKey, kdf: dict) -> "EncryptionParameters":
        return cls(kdf=dict(kdf), key_check=key.check_value)

    @classmethod
    def of_config(cls, config: dict) -> "EncryptionParameters | None":
        """A repository config's parameters; None when it is not encrypted."""
        if not config.get("encrypted"):
            return None
        return cls(kdf=dict(config["kdf"]), key_check=config["key_check"])

    def to_text(self) -> str:
        body = json.dumps({"kdf": self.kdf, "key_check": self.key_check}, sort_keys=True,
                          separators=(",", ":"))
        return ENCRYPTION_TEXT_PREFIX + base64.urlsafe_b64encode(body.encode()).decode()

    @classmethod
    def from_text(cls, text: str) -> "EncryptionParameters":
        """Parse ``to_text``'s form; a damaged copy gets an error that says where it comes from."""
        problem = ("the encryption parameters are damaged: copy them whole from add_repository's "
                   "output or the repository's page")
        text = text.strip()
        if not text.startswith(ENCRYPTION_TEXT_PREFIX):
            raise RepositoryKeyError(f"{problem} (they start with {ENCRYPTION_TEXT_PREFIX})")
        try:
            raw = json.loads(base64.urlsafe_b64decode(text[len(ENCRYPTION_TEXT_PREFIX):].encode()))
            kdf, key_check = dict(raw["kdf"]), str(raw["key_check"])
            base64.b64decode(kdf["salt"], validate=True)
            int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        except (ValueError, KeyError, TypeError):
            raise RepositoryKeyError(problem) from None
        if kdf.get("kdf") != "scrypt" or len(key_check) != 32:
            raise RepositoryKeyError(problem)
        return cls(kdf=kdf, key_check=key_check)


def derive_key(passphrase: str, parameters: dict) -> RepositoryKey:
    """The repository key for a passphrase under the repository's KDF parameters."""
    if not passphrase:
        raise RepositoryKeyError("the passphrase is empty: give the repository's passphrase")
    if parameters.get("kdf") != "scrypt":
        raise RepositoryKeyError(f"unknown key derivation {parameters.get('kdf')!r}")
    master = hashlib.scrypt(
        passphrase.encode(), salt=base64.b64decode(parameters["salt"]),
        n=parameters["n"], r=parameters["r"], p=parameters["p"],
        maxmem=256 * 1024 * 1024, dklen=KEY_SIZE,
    )
    return RepositoryKey(master)


def unlock(passphrase: str, parameters: dict, check_value: str) -> RepositoryKey:
    """Derive the key and check it; a wrong passphrase gets a clear RepositoryKeyError."""
    key = derive_key(passphrase, parameters)
    if not hmac.compare_digest(key.check_value, check_value):
        raise RepositoryKeyError(
            "wrong passphrase: it doesn't match this repository's key check value"
        )
    return key
