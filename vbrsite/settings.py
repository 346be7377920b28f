"""Settings of the backup server, read from the environment.

Every value has a working default (the embedded stack: SQLite, django-q2's ORM
broker, data under var/). Values that can't be used don't stop the import: they
are collected in SETTINGS_ERRORS and reported by the system check vbrsite.E001,
which says what to set.
"""

from pathlib import Path

from vbrsite import env
from vbrsite.database import parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
SETTINGS_ERRORS: list[str] = []


def _read(helper, *args):
    try:
        return helper(*args)
    except (env.ConfigError, OSError) as exc:
        SETTINGS_ERRORS.append(str(exc))
        return args[-1] if len(args) > 1 else ""


DATA_DIR = Path(env.env_str("VBR_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DEBUG = _read(env.env_bool, "VBR_DEBUG", False)
SECRET_KEY = _read(env.secret_key, DATA_DIR) or "unusable-see-check-vbrsite-E001"
ALLOWED_HOSTS = env.env_list("VBR_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.env_list("VBR_CSRF_TRUSTED_ORIGINS", [])
REDIS_URL = env.env_str("VBR_REDIS_URL")
ADMIN_PASSWORD = env.env_str("VBR_ADMIN_PASSWORD")
# The demo of the embedded stack: `make run` starts the simulator and registers
# it as the manager "demo" with a demo job. Off with VBR_DEMO=0, and skipped
# whenever another manager is registered.
VBR_DEMO = _read(env.env_bool, "VBR_DEMO", True)
SECRETS_KEY = env.env_str("VBR_SECRETS_KEY")

try:
    DATABASES = {"default": parse_database_url(env.env_str("DATABASE_URL"), DATA_DIR)}
except env.ConfigError as exc:
    SETTINGS_ERRORS.append(str(exc))
    DATABASES = {"default": parse_database_url("", DATA_DIR)}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_q",
    "vbrsite",
    "inventory",
    "repositories",
    "workers",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "vbrsite.urls"
WSGI_APPLICATION = "vbrsite.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "vbrsite.context_processors.navigation",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.env_str("VBR_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

# Mail for job notifications: an SMTP relay (VBR_EMAIL_PASSWORD_FILE for the password).
# The timeout keeps a session driver from hanging on a mail server that doesn't answer.
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = env.env_str("VBR_EMAIL_HOST", "localhost")
EMAIL_PORT = _read(env.env_int, "VBR_EMAIL_PORT", 25)
EMAIL_HOST_USER = env.env_str("VBR_EMAIL_USER")
EMAIL_HOST_PASSWORD = _read(env.env_str, "VBR_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = _read(env.env_bool, "VBR_EMAIL_STARTTLS", False)
EMAIL_USE_SSL = _read(env.env_bool, "VBR_EMAIL_SSL", False)
EMAIL_TIMEOUT = 30
DEFAULT_FROM_EMAIL = env.env_str("VBR_EMAIL_FROM", "backup@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    SETTINGS_ERRORS.append("VBR_EMAIL_STARTTLS and VBR_EMAIL_SSL are both on: use one (STARTTLS on port 587, "
                           "SSL on port 465)")

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads no cookie: the token travels in hx-headers

# Inventory: how often each manager is synced, and the timeout of every call
# to an engine (seconds).
VBR_SYNC_INTERVAL_MINUTES = _read(env.env_int, "VBR_SYNC_INTERVAL_MINUTES", 15)
VBR_ENGINE_TIMEOUT = _read(env.env_int, "VBR_ENGINE_TIMEOUT", 60)

# Repositories: the default repository's data mover (make run starts it), and
# how long garbage collection spares unreferenced chunks (hours).
DEFAULT_DATAMOVER_URL = env.env_str("VBR_DEFAULT_DATAMOVER_URL", "http://127.0.0.1:8100")
GC_GRACE_HOURS = _read(env.env_int, "VBR_GC_GRACE_HOURS", 6)

# Workers: how a worker's runner comes alive once its VM is up ("local": the
# backup server starts `manage.py runworker NAME` itself, for the embedded stack
# and the tests; "cloud-init": the worker VM installs the project and starts
# it), its heartbeat period and the silence after which it is unreachable
# (seconds), the idle time after which a deployed worker is stopped (minutes,
# 0: never), imageio connections per disk, and runs of a disk task whose worker
# was lost. A worker VM reaches the database and broker at the WORKER_* URLs
# (empty: the backup server's own) and installs VBR_WORKER_PACKAGE with pip.
VBR_WORKER_LAUNCHER = env.env_str("VBR_WORKER_LAUNCHER", "local")
VBR_WORKER_HEARTBEAT_SECONDS = _read(env.env_int, "VBR_WORKER_HEARTBEAT_SECONDS", 10)
VBR_WORKER_HEARTBEAT_TIMEOUT = _read(env.env_int, "VBR_WORKER_HEARTBEAT_TIMEOUT", 90)
VBR_WORKER_IDLE_MINUTES = _read(env.env_int, "VBR_WORKER_IDLE_MINUTES", 30)
VBR_WORKER_CONNECTIONS = _read(env.env_int, "VBR_WORKER_CONNECTIONS", 4)
VBR_DISK_TASK_ATTEMPTS = _read(env.env_int, "VBR_DISK_TASK_ATTEMPTS", 2)
# Times a worker sends a request again after imageio dropped its connection, waiting
# 0.5 s, then 1, 2, 4... (5: gives up after about 15 s of a host that doesn't answer).
VBR_WORKER_RETRIES = _read(env.env_int, "VBR_WORKER_RETRIES", 5)
# Bandwidth cap of one disk task, MB/s of disk data (0: none), to spare production storage.
VBR_WORKER_MAX_MBPS = _read(env.env_int, "VBR_WORKER_MAX_MBPS", 0)
# A disk index of more JSON bytes than this goes back to the session driver as chunks in the
# repository instead of in the task's database row (repositories/store/stash.py).
VBR_INDEX_INLINE_BYTES = _read(env.env_int, "VBR_INDEX_INLINE_BYTES", 4 * 1024 * 1024)
# Days finished disk tasks (with their block indexes) are kept for the pages and the logs.
VBR_DISK_TASK_KEEP_DAYS = _read(env.env_int, "VBR_DISK_TASK_KEEP_DAYS", 14)
VBR_WORKER_DATABASE_URL = env.env_str("VBR_WORKER_DATABASE_URL")
VBR_WORKER_REDIS_URL = env.env_str("VBR_WORKER_REDIS_URL")
VBR_WORKER_PACKAGE = env.env_str("VBR_WORKER_PACKAGE")  # empty: workers.launchers.worker_package()

# Backup sessions: how long to wait for a backup, snapshot or transfer to
# change phase (seconds); "auto" uses the engine's backup API with checkpoints
# and falls back to snapshots, "snapshot" always uses snapshots; the silence
# after which a running session's driver is taken for dead (seconds); how often
# reconcile looks for what dead sessions left in the engine (minutes).
VBR_ENGINE_WAIT_TIMEOUT = _read(env.env_int, "VBR_ENGINE_WAIT_TIMEOUT", 600)
VBR_BACKUP_METHOD = env.env_str("VBR_BACKUP_METHOD", "auto")
VBR_SESSION_STALE_SECONDS = _read(env.env_int, "VBR_SESSION_STALE_SECONDS", 120)
VBR_RECONCILE_INTERVAL_MINUTES = _read(env.env_int, "VBR_RECONCILE_INTERVAL_MINUTES", 10)

# Job runners. "control" runs session drivers and control work; worker runners
# start with Q_CLUSTER_NAME=<queue> and get tasks sent with cluster=<queue>.
# ALT_CLUSTERS must exist (django-q2 pops it) so any dynamic name works.
TASK_TIMEOUT = _read(env.env_int, "VBR_TASK_TIMEOUT", 6 * 3600)
Q_CLUSTER = {
    "name": "control",
    "workers": _read(env.env_int, "VBR_RUNNER_WORKERS", 4),
    "timeout": TASK_TIMEOUT,
    "retry": TASK_TIMEOUT + 600,
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "poll": 0.5,
    "save_limit": 1000,
    "label": "Job runners",
    "ALT_CLUSTERS": {},
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.env_str("VBR_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
