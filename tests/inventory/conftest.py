import pytest
from django.contrib.auth.models import Group, User

from vbrsite.roles import ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR

PASSWORD = "manager-password-that-must-never-show"


@pytest.fixture
def client_as(db, client):
    """A logged-in test client for a user of the given role."""

    def login(role: str):
        user = User.objects.create_user(username=role.lower().replace(" ", "-"), password="x")
        # get_or_create: a transactional test before this one flushed the migrated groups.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        client.force_login(user)
        return client

    return login


@pytest.fixture
def admin_client(client_as):
    return client_as(ADMINISTRATOR)


ROLES_THAT_BROWSE = [ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR]
ROLES_THAT_MAY_NOT_MANAGE = [OPERATOR, RESTORE_OPERATOR]
