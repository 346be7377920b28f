"""Run the data mover under gunicorn (threaded workers; TLS when given a certificate)."""

import argparse
import logging
import sys
from pathlib import Path

from gunicorn.app.base import BaseApplication

from repositories.datamover.app import DataMoverApp, DataMoverConfig
from repositories.store import ChunkStore, StoreError

DEFAULT_BIND = "127.0.0.1:8100"


def add_verify_content_argument(parser) -> None:
    """``--verify-content`` / ``--no-verify-content``, the same on both data mover commands."""
    parser.add_argument(
        "--verify-content", action=argparse.BooleanOptionalAction, default=False,
        help="decompress every chunk received and check its content against its name (about 1.4 "
             "CPU-seconds more per GiB of data; the default checks each chunk's framing and CRC-32 and "
             "trusts the worker's name, which restores and verify_repository check)")


class DataMoverServer(BaseApplication):
    """A gunicorn application serving one repository."""

    def __init__(self, config: DataMoverConfig, options: dict):
        self.config_ = config
        self.options = options
        super().__init__()

    def load_config(self):
        for name, value in self.options.items():
            if value is not None and name in self.cfg.settings:
                self.cfg.set(name, value)

    def load(self):
        return DataMoverApp(self.config_)


def serve(config: DataMoverConfig, bind: str = DEFAULT_BIND, *, workers: int = 2,
          threads: int = 8, certfile: str | None = None, keyfile: str | None = None,
          access_log: bool = False) -> None:
    """Serve until stopped (SIGTERM/SIGINT); checks the repository before forking."""
    # Open once in the master so a wrong path or key fails here, with its message.
    ChunkStore.open(config.path, key=config.key)
    if not logging.getLogger().handlers:  # standalone (a gateway): our lines beside gunicorn's
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    if bool(certfile) != bool(keyfile):
        raise StoreError("TLS needs both a certificate file and its key file")
    for name in (certfile, keyfile):
        if name and not Path(name).is_file():
            raise StoreError(f"TLS file {name} doesn't exist")
    options = {
        "bind": [bind], "workers": workers, "threads": threads, "worker_class": "gthread",
        "timeout": 120, "graceful_timeout": 30, "keepalive": 75,
        "certfile": certfile, "keyfile": keyfile, "proc_name": "vbr-datamover",
        "accesslog": "-" if access_log else None, "errorlog": "-",
        # Chunks are up to 4 MiB: the request line and headers stay small.
        "limit_request_line": 8190,
        # Several gunicorns run on one host (web, one data mover per repository).
        "control_socket_disable": True,
    }
    DataMoverServer(config, options).run()


def main_error(message: str) -> None:
    print(f"datamover: {message}", file=sys.stderr)
    sys.exit(2)
