"""Create a backup job from the command line."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from jobs import services
from jobs.choices import RetentionKind, ScheduleKind, VmSelection
from jobs.management.commands._common import lookup
from jobs.models import BackupJob


class Command(BaseCommand):
    help = ("Create a backup job: create_job NAME --repository R (--vm VM ... | --tag T | --cluster C) "
            "[--retain N] [--schedule CRON]")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--repository", required=True, help="the repository's name")
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--vm", action="extend", nargs="+",
                          help="VM names or engine ids (--vm a b, or --vm a --vm b)")
        what.add_argument("--tag", help="back up the VMs carrying this tag (resolved at each run)")
        what.add_argument("--cluster", help="back up the VMs of this cluster (resolved at each run)")
        parser.add_argument("--retain", type=int, default=7, help="restore points to keep per VM (default 7)")
        parser.add_argument("--schedule", default="", help="a cron expression, e.g. '30 22 * * *' (default: manual)")
        parser.add_argument("--parallel", type=int, default=2, help="VMs backed up at a time (default 2)")
        parser.add_argument("--description", default="")

    def handle(self, *args, name, repository, vm, tag, cluster, retain, schedule, parallel, description,
               **options):
        if BackupJob.objects.filter(name=name).exists():
            raise CommandError(f"A job named {name!r} exists already: pick another name.")
        job = BackupJob(name=name, description=description,
                        repository=lookup(services.find_repository, repository),
                        retention_kind=RetentionKind.POINTS, retain=retain, parallel_vms=parallel)
        vms = [lookup(services.find_vm, v) for v in vm or []]
        if tag:
            job.selection, job.tag = VmSelection.TAG, tag
        elif cluster:
            job.selection, job.cluster = VmSelection.CLUSTER, lookup(services.find_cluster, cluster)
        if schedule:
            job.schedule_kind, job.schedule_cron = ScheduleKind.CRON, schedule
        try:
            job.full_clean()
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(m)}" for field, m in exc.message_dict.items())
            raise CommandError(f"The job can't be created: {problems}") from None
        with transaction.atomic():
            job.save()
            job.vms.set(vms)
        self.stdout.write(self.style.SUCCESS(f"Created job {job.name} (id {job.pk}): "
                                             f"{job.selection_label()}, {job.schedule_label()}, "
                                             f"keeps {job.retention_label()}."))
