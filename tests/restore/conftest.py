"""Fixtures of the restore tests: a repository served by a real data mover process."""

import sys

import pytest

from repositories.services import create_repository
from tests.support.processes import free_port, running, wait_for_port


@pytest.fixture
def repository(db, tmp_path, output_dir):
    """A local repository record with its store, served by the standalone data mover."""
    port = free_port()
    record = create_repository("restore-tests", str(tmp_path / "repository"),
                               url=f"http://127.0.0.1:{port}")
    token_file = tmp_path / "datamover.token"
    token_file.write_text(record.token)
    args = [sys.executable, "-m", "repositories.datamover", "--path", record.path,
            "--token-file", str(token_file), "--bind", f"127.0.0.1:{port}",
            "--workers", "1", "--threads", "4"]
    with running(args, log_path=output_dir / "datamover.log") as process:
        wait_for_port(port, process=process)
        yield record
