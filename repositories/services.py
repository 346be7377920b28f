"""What the pages and commands do with repositories: create, test, refresh, verify, clean."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.utils import timezone

from repositories.choices import GatewayState
from repositories.datamover.client import DataMoverError, Unreachable
from repositories.models import GatewayServer, Repository
from repositories.signals import repository_verified
from repositories.store import ChunkStore, StoreError, derive_key, new_kdf_parameters, unlock

log = logging.getLogger(__name__)


class RepositoryError(Exception):
    """A repository can't be created or used as asked; the message says what to do."""


def prepare_store(path: str, passphrase: str | None):
    """Create the chunk store at path (or open the one there); returns (store, key).

    An existing encrypted store needs its passphrase; a wrong one is refused.
    """
    try:
        existing = ChunkStore.open(path)
    except StoreError:
        existing = None
    try:
        if existing is None:
            key = None
            parameters = None
            if passphrase:
                parameters = new_kdf_parameters()
                key = derive_key(passphrase, parameters)
            return ChunkStore.create(path, key=key, kdf_parameters=parameters), key
        if existing.encrypted:
            if not passphrase:
                raise RepositoryError(f"{path} holds an encrypted repository: give its passphrase")
            key = unlock(passphrase, existing.config["kdf"], existing.config["key_check"])
            return ChunkStore.open(path, key=key), key
        if passphrase:
            raise RepositoryError(f"{path} holds an unencrypted repository: "
                                  "it can't be encrypted now; choose an empty folder")
        return existing, None
    except (StoreError, OSError) as exc:
        raise RepositoryError(str(exc)) from None


def create_repository(name: str, path: str, *, url: str = "", passphrase: str | None = None,
                      gateway: GatewayServer | None = None, token: str = "",
                      **fields) -> Repository:
    """Record a repository; when it is local (no gateway), also create its store at path.

    With a gateway, the store is created by the gateway's data mover
    (``Repository.gateway_command()``), and only the record is made; an
    encrypted one gets its key here, and the gateway only its parameters.
    """
    if Repository.objects.filter(name=name).exists():
        raise RepositoryError(f"a repository named {name!r} exists already: choose another name")
    repository = Repository(name=name, path=path, gateway=gateway, **fields)
    if token:
        repository.token = token
    repository.datamover_url = url or (gateway.default_datamover_url() if gateway
                                       else "http://127.0.0.1:8100")
    if gateway is None:
        if not Path(path).is_absolute():
            raise RepositoryError(f"the path {path!r} is not absolute: give the full folder path")
        store, key = prepare_store(path, passphrase)
        if key is not None:
            _record_key(repository, key, store.config["kdf"])
    elif passphrase:
        _record_key(repository, *_gateway_key(repository, passphrase, probe=bool(token)))
    repository.save()
    return repository


def _record_key(repository: Repository, key, kdf: dict) -> None:
    repository.encrypted = True
    repository.key, repository.key_check, repository.kdf = key.to_text(), key.check_value, kdf


def _gateway_key(repository: Repository, passphrase: str, *, probe: bool):
    """The key of an encrypted repository on a gateway, and its KDF parameters.

    The key is derived here and never sent to the gateway. When the gateway's
    data mover answers already (its token was given), the repository it serves
    decides: an encrypted one is unlocked with the passphrase (adding it back
    after the backup server was rebuilt), an unencrypted one is refused.
    Otherwise the parameters are new, and the data mover is started with them.
    """
    if probe:
        try:
            with repository.client(timeout=5, retries=0) as client:
                info = client.info()
        except Unreachable:
            info = None
        except DataMoverError as exc:
            raise RepositoryError(f"the data mover at {repository.datamover_url}: {exc}") from None
        if info is not None and not info.get("encrypted"):
            raise RepositoryError(
                f"the data mover at {repository.datamover_url} serves an unencrypted repository: "
                "it can't be encrypted now. Stop it, give it an empty folder, add the repository "
                "here and start the data mover with the command shown then")
        if info is not None:
            try:
                return unlock(passphrase, info["kdf"], info["key_check"]), info["kdf"]
            except StoreError as exc:
                raise RepositoryError(f"the repository at {repository.datamover_url}: {exc}") from None
    kdf = new_kdf_parameters()
    return derive_key(passphrase, kdf), kdf


@dataclass
class RepositoryLease:
    """An open lease on a repository: the manifests it names can't be deleted (retention,
    and so garbage collection, leave their chunks alone), and chunks stored since it was
    opened are kept. ``with lease:`` closes it; a lease never closed expires after its ttl.
    """

    repository: Repository
    id: str
    warn: Callable[[str], None]

    @classmethod
    def open(cls, repository: Repository, label: str, manifest_ids: list[str], *, ttl: float = 24 * 3600,
             warn: Callable[[str], None] | None = None) -> RepositoryLease:
        """Raises DataMoverError when the data mover refuses or can't be reached."""
        with repository.client() as client:
            lease = client.open_lease(label=label, ttl=ttl, manifests=manifest_ids)
        return cls(repository, lease["id"], warn or log.warning)

    def __enter__(self) -> RepositoryLease:
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            with self.repository.client() as client:
                client.close_lease(self.id)
        except DataMoverError as exc:  # it expires on its own after its ttl
            self.warn(f"could not close the repository lease {self.id}: {exc}")


@dataclass
class TestResult:
    """The outcome of "Test": every step that passed, or the exact problem."""

    ok: bool
    steps: list[str]
    problem: str = ""


def test_connection(url: str, token: str, ca_pem: str = "", key_check: str = "") -> TestResult:
    """Reach the data mover, check the repository, write and delete a probe."""
    from repositories.datamover.client import DataMoverClient

    steps: list[str] = []
    try:
        with DataMoverClient(url, token, ca_pem=ca_pem or None, timeout=10, retries=0) as client:
            info = client.info()
            steps.append(f"Reached the data mover at {url}; repository {info['id']}.")
            if key_check and not info.get("encrypted"):
                return TestResult(False, steps, "The repository there is not encrypted, but this record "
                                  "is: start the data mover on an empty folder with the command on the "
                                  "repository's page (it has --encryption).")
            if key_check and info.get("key_check") != key_check:
                return TestResult(False, steps, "The repository there has another encryption key "
                                  "than this record: check the path and the data mover URL.")
            probe = client.probe()
            steps.append(f"Wrote, read back and deleted a probe; {probe['free']:,} bytes free.")
    except (DataMoverError, ValueError) as exc:
        return TestResult(False, steps, str(exc))
    return TestResult(True, steps)


def record_gateway_state(repository: Repository, error: str = "") -> None:
    """A gateway is ready when its data mover answered, unreachable when it didn't."""
    gateway = repository.gateway
    if gateway is None:
        return
    if error:
        gateway.state, gateway.last_error = GatewayState.UNREACHABLE, error
    else:
        gateway.state, gateway.last_error, gateway.last_seen = GatewayState.READY, "", timezone.now()
    gateway.save(update_fields=["state", "last_error", "last_seen"])


def refresh_stats(repository: Repository, timeout: float = 5) -> dict:
    """Read the data mover's figures into the record; raises DataMoverError when unreachable."""
    try:
        with repository.client(timeout=timeout, retries=0) as client:
            stats = client.stats()
    except DataMoverError as exc:
        record_gateway_state(repository, str(exc))
        raise
    record_gateway_state(repository)
    repository.stats = stats
    repository.stats_updated = timezone.now()
    repository.save(update_fields=["stats", "stats_updated"])
    return stats


def verify_repository(repository: Repository,
                      progress: Callable[[dict], None] | None = None) -> dict:
    """Verify every chunk the restore points reference; record and announce the result."""
    with repository.client() as client:
        report = client.verify(progress=progress)
    repository.last_verification = report
    repository.verified_at = timezone.now()
    repository.save(update_fields=["last_verification", "verified_at"])
    repository_verified.send(sender=Repository, repository=repository, report=report)
    return report


def collect_garbage(repository: Repository, grace_seconds: float, dry_run: bool = False,
                    progress: Callable[[dict], None] | None = None) -> dict:
    """Remove chunks no restore point references, sparing young and leased ones."""
    with repository.client() as client:
        return client.collect_garbage(grace_seconds=grace_seconds, dry_run=dry_run,
                                      progress=progress)
