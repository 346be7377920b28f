from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"

    def ready(self) -> None:
        # Registers the system checks; schedules are made by ensure_schedules(), never here.
        from inventory import checks  # noqa: F401
