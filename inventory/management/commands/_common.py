"""Helpers shared by the inventory's management commands."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError

from inventory.models import Manager


def read_file(path: str, what: str) -> str:
    """The text of a file named on the command line, or a CommandError saying what is wrong."""
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise CommandError(f"Can't read the {what} file {path}: {exc.strerror}.") from None


def get_manager(name: str) -> Manager:
    """The manager with this name, or a CommandError listing the known ones."""
    manager = Manager.objects.filter(name=name).first()
    if manager is None:
        known = ", ".join(Manager.objects.values_list("name", flat=True)) or "none yet"
        raise CommandError(f"No manager named {name!r} (known: {known}). Add one with add_manager.")
    return manager
