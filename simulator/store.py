"""The simulator's state: plain JSON under the state directory, written atomically."""

import json
import os
import tempfile
import uuid
from pathlib import Path

COLLECTIONS = (
    "datacenters", "clusters", "hosts", "storagedomains", "networks", "vnicprofiles", "templates",
    "tags", "vms", "disks", "snapshots", "imagetransfers", "events", "backups", "checkpoints",
)


def new_id() -> str:
    """A fresh entity id, a UUID as oVirt uses."""
    return str(uuid.uuid4())


def write_json_atomically(path: Path, data, mode: int = 0o644) -> None:
    """Write data as JSON so a reader never sees a half-written file.

    One line (``python -m json.tool`` shows it indented): json's C encoder writes it in a
    third of the time the indented form takes, and the engine saves its model under its
    lock after every change, which every request then waits for.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(data, sort_keys=True))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class Store:
    """Every collection of the model as dicts of id -> entity, plus scalars under "meta"."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict = {"meta": {}, "faults": []}
        for name in COLLECTIONS:
            self.data[name] = {}

    @property
    def exists(self) -> bool:
        """Whether a previous run left state behind."""
        return self.path.exists()

    def load(self) -> None:
        """Read the state a previous run saved."""
        loaded = json.loads(self.path.read_text())
        for name in COLLECTIONS:
            loaded.setdefault(name, {})
        loaded.setdefault("faults", [])
        loaded.setdefault("meta", {})
        self.data = loaded

    def save(self) -> None:
        """Persist the whole state (the caller holds the engine lock)."""
        write_json_atomically(self.path, self.data)

    def __getitem__(self, collection: str) -> dict:
        return self.data[collection]

    @property
    def meta(self) -> dict:
        """Scalars: the password, the seed, counters."""
        return self.data["meta"]

    @property
    def faults(self) -> list:
        """The injected faults still active."""
        return self.data["faults"]
