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
from django.db.models.query_utils import DeferredAttribute

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


class _Stored(str):
    """A secret as the database holds it, not decrypted yet."""


class _DecryptedOnRead(DeferredAttribute):
    # Rows load without decrypting: a page that lists repositories or managers works
    # after a key change, and only what uses the secret meets SecretError, which says
    # what to do (enter it again, on the very edit page that now opens).
    def __get__(self, instance, cls=None):
        value = super().__get__(instance, cls)
        if isinstance(value, _Stored):
            value = decrypt(value)
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance, value):  # a data descriptor: reads always pass through __get__
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.TextField):
    """A text field stored encrypted; Python code sees the plain value, decrypted when read.

    Never render it in a form's initial value or a page: forms must ask for
    a new value and keep the old one when left empty.
    """

    descriptor_class = _DecryptedOnRead

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return _Stored(value)

    def pre_save(self, model_instance, add):
        # The value as held: a secret never read is written back as it was stored
        # (one not loaded at all, a deferred field saved by name, is loaded first).
        if self.attname in model_instance.__dict__:
            return model_instance.__dict__[self.attname]
        return getattr(model_instance, self.attname)

    def get_prep_value(self, value):
        if isinstance(value, _Stored):
            return str.__str__(value)
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)
