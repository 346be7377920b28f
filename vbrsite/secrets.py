"""Secrets at rest: engine passwords, data mover tokens and repository keys.

Values are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived
from VBR_SECRETS_KEY, or from the SECRET_KEY when that is unset. Losing the key
loses the secrets, never the backups: repository keys are also needed by the
administrator, who keeps the passphrase.
"""

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

PREFIX = "fernet:"


class SecretError(Exception):
    """A stored secret can't be decrypted with the current key."""


def _fernet() -> Fernet:
    material = (getattr(settings, "SECRETS_KEY", "") or settings.SECRET_KEY).encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"vbr-secrets", info=b"fields").derive(material)
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plain: str) -> str:
    """The stored form of a secret."""
    return PREFIX + _fernet().encrypt(plain.encode()).decode()


def decrypt(stored: str) -> str:
    """The plain secret from its stored form."""
    if not stored.startswith(PREFIX):
        raise SecretError("the stored value is not an encrypted secret")
    try:
        return _fernet().decrypt(stored[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise SecretError(
            "a stored secret can't be decrypted: VBR_SECRETS_KEY or VBR_SECRET_KEY changed; "
            "restore the old key or enter the secret again"
        ) from None


class EncryptedTextField(models.TextField):
    """A text field stored encrypted; Python code sees the plain value.

    Never render it in a form's initial value or a page: forms must ask for
    a new value and keep the old one when left empty.
    """

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)
