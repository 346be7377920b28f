"""Settings come from the environment, with working defaults and clear errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vbrsite import env
from vbrsite.database import parse_database_url

ROOT = Path(__file__).resolve().parents[2]


def settings_in_child(environment: dict, expression: str):
    """Evaluate an expression over vbrsite.settings in a fresh interpreter with that environment."""
    code = (
        "import json, vbrsite.settings as s\n"
        f"print(json.dumps({expression}, default=str))"
    )
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**base, **environment},
        capture_output=True, text=True, check=True,
    )
    return json.loads(done.stdout)


def test_defaults_give_the_embedded_stack(tmp_path):
    result = settings_in_child(
        {"VBR_DATA_DIR": str(tmp_path)},
        "[s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], s.DEBUG, "
        "s.Q_CLUSTER.get('orm'), s.SETTINGS_ERRORS, s.ALLOWED_HOSTS]",
    )
    engine, name, debug, orm, errors, hosts = result
    assert engine == "django.db.backends.sqlite3"
    assert name == str(tmp_path / "vbr.sqlite3")
    assert debug is False
    assert orm == "default"
    assert errors == []
    assert "127.0.0.1" in hosts


def test_secret_key_is_generated_once_into_the_data_dir(tmp_path):
    first = settings_in_child({"VBR_DATA_DIR": str(tmp_path)}, "s.SECRET_KEY")
    second = settings_in_child({"VBR_DATA_DIR": str(tmp_path)}, "s.SECRET_KEY")
    assert first == second
    assert len(first) >= 50
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_secret_key_can_come_from_a_file(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file-" + "x" * 40 + "\n")
    key = settings_in_child({"VBR_DATA_DIR": str(tmp_path), "VBR_SECRET_KEY_FILE": str(key_file)}, "s.SECRET_KEY")
    assert key == "from-a-file-" + "x" * 40
    assert not (tmp_path / "secret_key").exists()


def test_environment_overrides_the_defaults(tmp_path):
    result = settings_in_child(
        {
            "VBR_DATA_DIR": str(tmp_path),
            "VBR_DEBUG": "yes",
            "VBR_ALLOWED_HOSTS": "backup.example.org, 10.0.0.5",
            "VBR_REDIS_URL": "redis://127.0.0.1:6379/3",
            "DATABASE_URL": "postgres://vbr:p%40ss@db.example.org:5433/backups",
        },
        "[s.DEBUG, s.ALLOWED_HOSTS, s.Q_CLUSTER.get('redis'), 'orm' in s.Q_CLUSTER, s.DATABASES['default']]",
    )
    debug, hosts, redis, has_orm, database = result
    assert debug is True
    assert hosts == ["backup.example.org", "10.0.0.5"]
    assert redis == "redis://127.0.0.1:6379/3"
    assert has_orm is False
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == ("db.example.org", "5433", "backups")
    assert (database["USER"], database["PASSWORD"]) == ("vbr", "p@ss")


def test_sqlite_urls_take_absolute_and_relative_paths(tmp_path):
    assert parse_database_url("sqlite:////srv/vbr/db.sqlite3", tmp_path)["NAME"] == "/srv/vbr/db.sqlite3"
    assert parse_database_url("sqlite:///db.sqlite3", tmp_path)["NAME"] == "db.sqlite3"


def test_sqlite_waits_instead_of_failing_when_locked(tmp_path):
    options = parse_database_url("", tmp_path)["OPTIONS"]
    assert options["timeout"] >= 10
    assert "journal_mode=WAL" in options["init_command"]


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("VBR_DEBUG", "maybe", "is not a boolean"),
        ("DATABASE_URL", "mysql://root@localhost/vbr", "is not supported"),
        ("VBR_TASK_TIMEOUT", "an hour", "is not an integer"),
    ],
)
def test_system_check_rejects_a_bad_value_and_says_what_to_do(tmp_path, variable, value, words):
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "VBR_DATA_DIR": str(tmp_path), variable: value},
    )
    assert done.returncode != 0
    assert "vbrsite.E001" in done.stderr
    assert variable in done.stderr and words in done.stderr


def test_system_check_rejects_an_unwritable_data_dir(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "VBR_DATA_DIR": str(blocker / "sub"),
             "VBR_SECRET_KEY": "k" * 50},
    )
    assert done.returncode != 0
    assert "vbrsite.E002" in done.stderr
    assert "VBR_DATA_DIR" in done.stderr


def test_processes_starting_together_all_pass_the_data_dir_check(settings, tmp_path):
    # make run starts the web server, the runners and the data mover at once on one data dir.
    from concurrent.futures import ThreadPoolExecutor

    from vbrsite.checks import check_data_dir

    settings.DATA_DIR = tmp_path / "data"
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: check_data_dir(None), range(400)))
    assert [r for r in results if r] == []
    assert list((tmp_path / "data").iterdir()) == []


def test_redis_broker_with_local_sqlite_is_rejected(tmp_path):
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", "VBR_DATA_DIR": str(tmp_path),
             "VBR_REDIS_URL": "redis://127.0.0.1:6379/0"},
    )
    assert done.returncode != 0
    assert "vbrsite.E003" in done.stderr


def test_boolean_words(monkeypatch):
    for word, expected in (("1", True), ("ON", True), ("no", False), ("", False)):
        monkeypatch.setenv("X_FLAG", word)
        assert env.env_bool("X_FLAG") is expected


def test_mail_settings_come_from_the_environment_and_a_contradiction_is_reported(tmp_path):
    password_file = tmp_path / "mail-password"
    password_file.write_text("s3cret\n")
    result = settings_in_child(
        {"VBR_DATA_DIR": str(tmp_path), "VBR_EMAIL_HOST": "smtp.example.org", "VBR_EMAIL_PORT": "587",
         "VBR_EMAIL_USER": "backup", "VBR_EMAIL_PASSWORD_FILE": str(password_file),
         "VBR_EMAIL_STARTTLS": "yes", "VBR_EMAIL_FROM": "backup@example.org"},
        "[s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, s.EMAIL_HOST_PASSWORD, s.EMAIL_USE_TLS, "
        "s.DEFAULT_FROM_EMAIL, s.EMAIL_TIMEOUT, s.SETTINGS_ERRORS]",
    )
    assert result == ["smtp.example.org", 587, "backup", "s3cret", True, "backup@example.org", 30, []]
    errors = settings_in_child({"VBR_DATA_DIR": str(tmp_path), "VBR_EMAIL_STARTTLS": "1", "VBR_EMAIL_SSL": "1",
                                "VBR_EMAIL_PORT": "smtp"}, "s.SETTINGS_ERRORS")
    assert any("VBR_EMAIL_PORT" in e for e in errors)
    assert any("use one (STARTTLS on port 587" in e for e in errors)
