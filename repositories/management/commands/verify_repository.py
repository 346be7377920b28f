"""manage.py verify_repository NAME: re-read every chunk the restore points reference."""

import json

from django.core.management.base import BaseCommand, CommandError

from repositories.datamover.client import DataMoverError
from repositories.models import Repository
from repositories.services import verify_repository


def get_repository(name: str) -> Repository:
    repository = Repository.objects.filter(name=name).first()
    if repository is None:
        names = ", ".join(Repository.objects.values_list("name", flat=True)) or "none yet"
        raise CommandError(f"no repository named {name!r} (repositories: {names})")
    return repository


class Command(BaseCommand):
    help = "Verify a repository: every chunk of every restore point is read and checked."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, name, json: bool = False, **options):
        repository = get_repository(name)
        try:
            report = verify_repository(repository, progress=None if json else self._progress)
        except DataMoverError as exc:
            raise CommandError(f"verification of {name} failed: {exc}") from None
        if json:
            self.stdout.write(_dumps(report))
        else:
            self._summary(report)
        if not report["ok"]:
            raise CommandError(f"{name}: {len(report['affected_manifests'])} restore point(s) damaged")

    def _progress(self, progress: dict) -> None:
        # The client reports at every poll; print only what changed.
        if progress["message"] != getattr(self, "_last_message", None):
            self._last_message = progress["message"]
            self.stdout.write(f"  {progress['message']}")

    def _summary(self, report: dict) -> None:
        self.stdout.write(f"Restore points: {report['manifests']}; chunks checked: "
                          f"{report['chunks_checked']}; bytes read: {report['bytes_read']:,}")
        if not report["content_checked"]:
            self.stdout.write("  (the data mover has no key: encrypted chunks' checksums checked, "
                              "not their content)")
        for digest in report["missing"]:
            self.stdout.write(self.style.ERROR(f"  missing chunk {digest}"))
        for digest, problem in report["corrupt"].items():
            self.stdout.write(self.style.ERROR(f"  corrupt chunk {digest}: {problem}"))
        for manifest_id, problem in report["damaged_manifests"].items():
            self.stdout.write(self.style.ERROR(f"  unreadable restore point {manifest_id}: {problem}"))
        for manifest_id in report["affected_manifests"]:
            self.stdout.write(self.style.ERROR(f"  damaged restore point {manifest_id}"))
        if report["ok"]:
            self.stdout.write(self.style.SUCCESS("Every restore point is intact."))


def _dumps(value) -> str:
    return json.dumps(value, indent=2)
