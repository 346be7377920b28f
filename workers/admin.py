from django.contrib import admin

from workers.models import DiskTask, Worker


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
    list_display = ("name", "manager", "cluster", "state", "max_tasks", "last_heartbeat")
    list_filter = ("state",)
    search_fields = ("name",)


@admin.register(DiskTask)
class DiskTaskAdmin(admin.ModelAdmin):
    list_display = ("pk", "kind", "disk_name", "worker", "state", "attempt", "created")
    list_filter = ("kind", "state")
    readonly_fields = ("result",)
