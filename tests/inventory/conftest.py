import pytest

from vbrsite.roles import ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR

PASSWORD = "manager-password-that-must-never-show"



@pytest.fixture
def admin_client(client_as):
    return client_as(ADMINISTRATOR)


ROLES_THAT_BROWSE = [ADMINISTRATOR, OPERATOR, RESTORE_OPERATOR]
ROLES_THAT_MAY_NOT_MANAGE = [OPERATOR, RESTORE_OPERATOR]
