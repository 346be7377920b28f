"""The role groups exist after migrate, and the first start makes an administrator."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from vbrsite.roles import ROLES


@pytest.mark.django_db
def test_groups_exist_after_migrate():
    assert set(Group.objects.values_list("name", flat=True)) >= {"Administrator", "Operator", "Restore operator"}
    assert set(ROLES) == {"Administrator", "Operator", "Restore operator"}


@pytest.mark.django_db
def test_first_start_creates_an_administrator_and_prints_its_password_once(capsys, settings):
    settings.ADMIN_PASSWORD = ""
    call_command("firstrun")
    first = capsys.readouterr().out
    password = next(line.split(":", 1)[1].strip() for line in first.splitlines() if "password:" in line)
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    assert admin.groups.filter(name="Administrator").exists()

    call_command("firstrun")
    second = capsys.readouterr().out
    assert password not in second
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
def test_first_start_takes_the_password_from_the_environment(capsys, settings):
    settings.ADMIN_PASSWORD = "chosen-by-the-operator"
    call_command("firstrun")
    assert "chosen-by-the-operator" not in capsys.readouterr().out
    assert get_user_model().objects.get(username="admin").check_password("chosen-by-the-operator")


@pytest.mark.django_db
def test_logged_in_user_sees_the_dashboard(client, django_user_model):
    user = django_user_model.objects.create_user("operator", password="pw-for-tests-1")
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    assert b"Dashboard" in response.content
    assert b"operator" in response.content
