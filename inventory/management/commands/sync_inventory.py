"""Sync the inventory of one manager, or of all, now (in this process)."""

from django.core.management.base import BaseCommand, CommandError

from inventory.management.commands._common import get_manager
from inventory.models import Manager
from inventory.sync import sync_manager
from plugin.errors import EngineError


class Command(BaseCommand):
    help = "Read every data center, cluster, host, storage domain, network, VM and disk of a manager."

    def add_arguments(self, parser):
        parser.add_argument("name", nargs="?", help="the manager (default: all)")

    def handle(self, *args, name, **options):
        managers = [get_manager(name)] if name else list(Manager.objects.order_by("name"))
        if not managers:
            raise CommandError("No managers yet. Add one with add_manager.")
        failed = []
        for manager in managers:
            try:
                result = sync_manager(manager)
            except EngineError as exc:
                self.stderr.write(f"{manager.name}: {exc}")
                failed.append(manager.name)
                continue
            self.stdout.write(self.style.SUCCESS(
                f"{manager.name}: synced in {result.seconds:.1f} s ({result.summary()})"))
        if failed:
            raise CommandError(f"Sync failed for: {', '.join(failed)}")
