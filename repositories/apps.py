from django.apps import AppConfig


class RepositoriesConfig(AppConfig):
    name = "repositories"

    def ready(self):
        from repositories import checks  # noqa: F401  (registers the system checks)
