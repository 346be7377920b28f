"""The local backend's writes: large objects go through O_DIRECT where the filesystem allows it."""

import errno
import os
from unittest import mock

import pytest

from repositories.store import backend as backend_module
from repositories.store.backend import DIRECT_ALIGN, DIRECT_MIN_SIZE, LocalBackend


@pytest.fixture
def local(tmp_path) -> LocalBackend:
    backend = LocalBackend(tmp_path / "repository")
    backend.prepare()
    return backend


@pytest.mark.parametrize("size", [10, DIRECT_MIN_SIZE - 1, DIRECT_MIN_SIZE, DIRECT_MIN_SIZE + 1,
                                  3 * DIRECT_ALIGN * 100 + 7, 4 * 1024 * 1024 + 48])
def test_objects_of_every_size_come_back_whole(local, size):
    data = os.urandom(size)
    local.write("chunks/ab/object", data, durable_name=False)
    assert local.read("chunks/ab/object") == data
    assert not list(local.list("tmp/"))  # no temporary file left behind


def test_a_filesystem_that_refuses_o_direct_gets_buffered_writes(local):
    refused = OSError(errno.EINVAL, "Invalid argument")
    with mock.patch.object(backend_module, "_write_direct", autospec=True, side_effect=refused) as direct:
        first, second = os.urandom(DIRECT_MIN_SIZE + 5), os.urandom(DIRECT_MIN_SIZE + 9)
        local.write("chunks/ab/first", first)
        local.write("chunks/ab/second", second)
    assert local.read("chunks/ab/first") == first and local.read("chunks/ab/second") == second
    assert direct.call_count == 1 and not local.direct_io  # asked once, then not again


def test_other_write_errors_are_raised_and_leave_no_object(local):
    full = OSError(errno.ENOSPC, "No space left on device")
    with (mock.patch.object(backend_module, "_write_direct", autospec=True, side_effect=full),
          pytest.raises(OSError, match="No space")):
        local.write("chunks/ab/object", os.urandom(DIRECT_MIN_SIZE))
    assert not local.exists("chunks/ab/object") and not list(local.list("tmp/"))
