"""Fixtures of the repository tests: stores on disk and real data mover processes."""

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from repositories.datamover.client import DataMoverClient
from repositories.store import BLOCK_SIZE, ChunkStore
from tests.support.processes import free_port, running, wait_for_port


def compressible_block(seed: int, size: int = BLOCK_SIZE) -> bytes:
    """Text-like data that zstd shrinks, different for each seed."""
    line = f"restore point block {seed} " * 4
    return (line.encode() * (size // len(line) + 1))[:size]


def random_block(size: int = BLOCK_SIZE) -> bytes:
    return os.urandom(size)


@pytest.fixture
def store(tmp_path) -> ChunkStore:
    return ChunkStore.create(tmp_path / "repository")


@dataclass
class RunningDataMover:
    url: str
    token: str
    path: Path
    process: object
    log: Path | None = None

    def client(self, **options) -> DataMoverClient:
        return DataMoverClient(self.url, self.token, **options)

    def store(self) -> ChunkStore:
        return ChunkStore.open(self.path)


def start_datamover(tmp_path: Path, output_dir: Path, *extra: str, name: str = "datamover"):
    """The standalone data mover (gunicorn) over a new repository under tmp_path."""
    token_file = tmp_path / f"{name}.token"
    token_file.write_text("test-token-" + name)
    port = free_port()
    args = [sys.executable, "-m", "repositories.datamover", "--path", str(tmp_path / name),
            "--token-file", str(token_file), "--bind", f"127.0.0.1:{port}", "--init",
            "--workers", "1", "--threads", "4", *extra]
    return port, token_file.read_text(), args, output_dir / f"{name}.log"


@pytest.fixture
def datamover(tmp_path, output_dir):
    port, token, args, log = start_datamover(tmp_path, output_dir)
    with running(args, log_path=log) as process:
        wait_for_port(port, process=process)
        yield RunningDataMover(f"http://127.0.0.1:{port}", token, tmp_path / "datamover", process, log)

