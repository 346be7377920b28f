"""The default repository of the embedded stack, created on first start."""

from __future__ import annotations

from django.conf import settings

from repositories.models import Repository
from repositories.services import create_repository, prepare_store

DEFAULT_NAME = "default"


def ensure_default_repository() -> Repository:
    """Create the local repository "default" under VBR_DATA_DIR/repositories/default, once.

    Idempotent: an existing record is returned as is (its store is created
    again if its folder was removed). `make run` starts its data mover.
    """
    existing = Repository.objects.filter(name=DEFAULT_NAME).first()
    if existing is not None:
        if existing.gateway is None and not existing.encrypted:
            prepare_store(existing.path, None)
        return existing
    path = settings.DATA_DIR / "repositories" / DEFAULT_NAME
    return create_repository(DEFAULT_NAME, str(path), url=settings.DEFAULT_DATAMOVER_URL,
                             description="The backup server's own repository.")
