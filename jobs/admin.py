from django.contrib import admin

from jobs.models import (
    BackupJob,
    ReconcileAction,
    ReplacedVm,
    RestorePoint,
    Session,
    SessionLog,
    TaskSession,
)


@admin.register(BackupJob)
class BackupJobAdmin(admin.ModelAdmin):
    list_display = ("name", "selection", "repository", "schedule_kind", "enabled")


class SessionLogInline(admin.TabularInline):
    model = SessionLog
    extra = 0


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = ("pk", "kind", "name", "state", "created", "finished")
    list_filter = ("kind", "state")
    inlines = [SessionLogInline]


@admin.register(TaskSession)
class TaskSessionAdmin(admin.ModelAdmin):
    list_display = ("pk", "session", "vm_name", "state", "mode")


@admin.register(RestorePoint)
class RestorePointAdmin(admin.ModelAdmin):
    list_display = ("pk", "vm_name", "time", "type", "state", "repository")
    list_filter = ("type", "state", "repository")


@admin.register(ReplacedVm)
class ReplacedVmAdmin(admin.ModelAdmin):
    list_display = ("vm_name", "manager", "old_engine_id", "engine_id", "time", "session")


@admin.register(ReconcileAction)
class ReconcileActionAdmin(admin.ModelAdmin):
    list_display = ("time", "kind", "object_id", "message")
