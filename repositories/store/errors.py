"""Exceptions of the chunk store; each message says what went wrong and what to do."""


class StoreError(Exception):
    """Base of every error the store raises."""


class ChunkError(StoreError):
    """A chunk is malformed, damaged, or doesn't match its name."""


class RepositoryKeyError(StoreError):
    """The repository key is missing or wrong (for example a mistyped passphrase)."""


class ManifestError(StoreError):
    """A manifest is malformed or inconsistent."""


class NotFound(StoreError):
    """A chunk, manifest or lease doesn't exist."""


class MissingChunks(StoreError):
    """A manifest references chunks the store doesn't hold; it was not written."""

    def __init__(self, digests: list[str]):
        self.digests = digests
        super().__init__(
            f"the manifest references {len(digests)} chunk(s) the repository doesn't hold "
            f"(first: {digests[0] if digests else '-'}); send them before the manifest"
        )


class Immutable(StoreError):
    """A restore point is younger than the repository's immutability period."""


class NotARepository(StoreError):
    """The path holds no repository (or one of an unknown format)."""
