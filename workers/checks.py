"""System checks of the workers' settings."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from workers.choices import Launcher


@register(Tags.compatibility)
def check_launcher(app_configs, **kwargs):
    """workers.E001: unknown launcher; workers.W001: cloud-init workers can't reach this server."""
    launcher = settings.VBR_WORKER_LAUNCHER
    if launcher not in Launcher.values:
        return [Error(f"VBR_WORKER_LAUNCHER={launcher!r} is not a launcher.",
                      hint="Use cloud-init (worker VMs start their own runner) or local "
                           "(the backup server starts it; the embedded stack and tests).",
                      id="workers.E001")]
    database = settings.VBR_WORKER_DATABASE_URL or settings.DATABASES["default"]["ENGINE"]
    broker = settings.VBR_WORKER_REDIS_URL or settings.REDIS_URL
    if launcher == Launcher.CLOUD_INIT and ("sqlite" in database or not broker):
        return [Warning("Worker VMs deployed with cloud-init need a database and broker they can "
                        "reach over the network; this server uses SQLite or the ORM broker.",
                        hint="Set DATABASE_URL=postgres://... and VBR_REDIS_URL=redis://... (or "
                             "VBR_WORKER_DATABASE_URL and VBR_WORKER_REDIS_URL as the VMs see them).",
                        id="workers.W001")]
    return []


@register(Tags.compatibility)
def check_heartbeats(app_configs, **kwargs):
    """workers.E002: the heartbeat timeout must leave room for a few heartbeats."""
    period, timeout = settings.VBR_WORKER_HEARTBEAT_SECONDS, settings.VBR_WORKER_HEARTBEAT_TIMEOUT
    if period < 1 or timeout < 2 * period:
        return [Error(f"VBR_WORKER_HEARTBEAT_TIMEOUT={timeout} must be at least twice "
                      f"VBR_WORKER_HEARTBEAT_SECONDS={period} (and the period at least 1).",
                      hint="e.g. VBR_WORKER_HEARTBEAT_SECONDS=10 and VBR_WORKER_HEARTBEAT_TIMEOUT=90.",
                      id="workers.E002")]
    return []
