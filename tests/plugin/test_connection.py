"""Connecting to an engine: product and version, and each failure with its own clear message."""

import pytest

from plugin import engine as ovirt
from plugin.errors import (
    AuthenticationFailed,
    CertificateNotTrusted,
    EngineError,
    EngineTimeout,
    EngineUnreachable,
)
from tests.plugin.conftest import other_ca_pem
from tests.support.processes import free_port


def test_it_logs_in_over_verified_tls_and_reads_product_and_version(credentials):
    with ovirt.connect(credentials) as conn:
        info = ovirt.api_info(conn)
        again = ovirt.api_info(conn)  # same token, no second login
    assert info.product_name and info.version
    assert again == info


def test_a_wrong_password_is_authentication_failed(credentials):
    wrong = ovirt.ManagerCredentials(credentials.url, credentials.username, "not-the-password",
                                     credentials.ca_pem)
    with pytest.raises(AuthenticationFailed, match="password"):
        ovirt.connect(wrong)


def test_an_engine_certificate_from_another_ca_is_not_trusted(credentials):
    wrong = ovirt.ManagerCredentials(credentials.url, credentials.username, credentials.password,
                                     other_ca_pem())
    with pytest.raises(CertificateNotTrusted, match="pki-resource"):
        ovirt.connect(wrong)


def test_no_ca_means_the_system_store_which_does_not_trust_a_private_engine_ca(credentials):
    system = ovirt.ManagerCredentials(credentials.url, credentials.username, credentials.password)
    with pytest.raises(CertificateNotTrusted):
        ovirt.connect(system)


def test_nothing_listening_is_unreachable():
    url = f"https://127.0.0.1:{free_port()}/ovirt-engine/api"
    with pytest.raises(EngineUnreachable, match="can't be reached"):
        ovirt.connect(ovirt.ManagerCredentials(url, "admin@internal", "x"))


def test_an_engine_that_never_answers_times_out_even_at_login(silent_server):
    url = f"https://127.0.0.1:{silent_server}/ovirt-engine/api"
    # Without a timeout on the SSO request the SDK would wait here forever.
    with pytest.raises(EngineTimeout):
        ovirt.connect(ovirt.ManagerCredentials(url, "admin@internal", "x"), timeout=1)


def test_a_url_without_the_api_path_says_where_the_api_is(credentials):
    server = credentials.url.rsplit("/ovirt-engine", 1)[0]
    wrong = ovirt.ManagerCredentials(server, credentials.username, credentials.password, credentials.ca_pem)
    with ovirt.connect(wrong) as conn, pytest.raises(EngineError, match="/ovirt-engine/api"):
        ovirt.api_info(conn)
