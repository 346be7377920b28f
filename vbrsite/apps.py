from django.apps import AppConfig


class VbrsiteConfig(AppConfig):
    name = "vbrsite"
    verbose_name = "Backup server"

    def ready(self):
        from vbrsite import checks  # noqa: F401  (registers the system checks)
