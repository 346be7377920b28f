"""What the dispatch tests share: a repository with no data mover, a disk of the inventory, a submit."""

import pytest

from inventory.models import Disk
from repositories.models import Repository
from workers import dispatch


@pytest.fixture
def repository(db):
    return Repository.objects.create(name="r", path="/srv/r", datamover_url="http://127.0.0.1:9")


@pytest.fixture
def disk(inventory_manager):
    return Disk.objects.filter(manager=inventory_manager).first()


def submit(manager, repository, disk, worker):
    return dispatch.submit_backup_disk(session_id=7, manager=manager, repository=repository, disk=disk,
                                       transfer_url="https://host1:54322/images/t", worker=worker)
