from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

pytest_plugins = ["tests.support.browser"]

OUTPUT_DIR = Path(__file__).resolve().parents[1] / "test-output"


@pytest.fixture(autouse=True)
def plain_static_files(settings):
    """Tests don't run collectstatic: serve static files without the hashed manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def output_dir(request) -> Path:
    """A folder under test-output/ for this test's logs and screenshots."""
    path = OUTPUT_DIR / request.node.nodeid.replace("/", "_").replace("::", "-")
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url_of(settings_dict: dict) -> str:
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict["USER"] or "postgres"
    auth = f"{user}:{settings_dict['PASSWORD']}" if settings_dict["PASSWORD"] else user
    host = settings_dict["HOST"] or "127.0.0.1"
    port = settings_dict["PORT"] or "5432"
    return f"postgres://{auth}@{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture
def live_env(transactional_db, tmp_path) -> dict:
    """Environment for a process (runner, data mover) that must see the test database."""
    (tmp_path / "data").mkdir(exist_ok=True)
    return {
        "DATABASE_URL": database_url_of(connection.settings_dict),
        "VBR_SECRET_KEY": settings.SECRET_KEY,
        "VBR_DATA_DIR": str(tmp_path / "data"),
        "DJANGO_SETTINGS_MODULE": "vbrsite.settings",
    }


@pytest.fixture
def simulator(tmp_path):
    """A running oVirt simulator seeded `small` (see simulator/testing.py), stopped afterwards."""
    from simulator.testing import running_simulator

    with running_simulator(tmp_path / "simulator", seed="small", delays=0.2) as handle:
        yield handle


@pytest.fixture
def client_as(db, client):
    """A logged-in test client for a user of the given role (None: a user with no role)."""
    from django.contrib.auth.models import Group, User

    def login(role: str | None):
        user = User.objects.create_user(username=(role or "nobody").lower().replace(" ", "-"), password="x")
        if role:
            # get_or_create: a transactional test before this one flushed the migrated groups.
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        client.force_login(user)
        return client

    return login
