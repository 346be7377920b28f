from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Backup jobs"

    def ready(self) -> None:
        # Signal handlers only; schedules are created by ensure_schedules() from firstrun.
        from django_q.signals import post_spawn

        from jobs import signals

        post_spawn.connect(signals.runner_spawned, dispatch_uid="jobs.runner_spawned")
