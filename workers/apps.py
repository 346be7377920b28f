from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"

    def ready(self) -> None:
        # Registers the system checks; schedules are made by ensure_schedules(), never here.
        from workers import checks  # noqa: F401
        from workers.runner import preload_task_modules, running_qcluster

        if running_qcluster():
            preload_task_modules()
