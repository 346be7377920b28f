"""System checks reject inventory settings that can't work."""

from inventory.checks import check_inventory_settings


def test_the_defaults_pass():
    assert check_inventory_settings(None) == []


def test_a_zero_interval_and_a_tiny_timeout_are_errors_that_say_what_to_set(settings):
    settings.VBR_SYNC_INTERVAL_MINUTES = 0
    settings.VBR_ENGINE_TIMEOUT = 1
    errors = check_inventory_settings(None)
    assert [e.id for e in errors] == ["inventory.E001", "inventory.E002"]
    assert "default 15" in errors[0].hint and "default 60" in errors[1].hint
