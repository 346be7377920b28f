"""Engine failures become the project's exceptions, each saying what to do."""

import ovirtsdk4 as sdk
import pycurl
import pytest
from ovirtsdk4 import types

from plugin import errors
from plugin.errors import translated


def _sdk_error_from_curl(code: int, text: str) -> sdk.Error:
    # The SDK raises its own Error while handling libcurl's, so libcurl's is the context.
    exc = sdk.Error(f"Error while sending HTTP request: ({code}, '{text}')")
    exc.__context__ = pycurl.error(code, text)
    return exc


def test_a_certificate_failure_says_to_give_the_engines_ca():
    exc = errors.translate(_sdk_error_from_curl(60, "SSL certificate problem: self-signed certificate"),
                           "testing")
    assert isinstance(exc, errors.CertificateNotTrusted)
    assert "pki-resource?resource=ca-certificate" in str(exc)


def test_a_refused_connection_is_unreachable():
    exc = errors.translate(_sdk_error_from_curl(7, "Failed to connect to 127.0.0.1 port 1"), "listing VMs")
    assert isinstance(exc, errors.EngineUnreachable)
    assert "listing VMs" in str(exc)


def test_an_auth_error_is_authentication_failed():
    exc = errors.translate(sdk.AuthError("Error during SSO authentication access_denied : Cannot "
                                         "authenticate user"), "logging in")
    assert isinstance(exc, errors.AuthenticationFailed)
    assert "password" in str(exc)


def test_a_fault_keeps_the_engines_reason_and_detail():
    fault = types.Fault(reason="Operation Failed", detail="[Cannot backup VM. The VM is during a backup.]")
    exc = errors.translate(sdk.Error("Fault reason is ...", code=409, fault=fault), "starting a backup")
    assert isinstance(exc, errors.Conflict)
    assert exc.code == 409 and exc.reason == "Operation Failed"
    assert exc.detail == "Cannot backup VM. The VM is during a backup."
    assert "during a backup" in str(exc)


def test_not_found_and_timeout():
    assert isinstance(errors.translate(sdk.NotFoundError("gone", code=404), "x"), errors.NotFound)
    assert isinstance(errors.translate(sdk.TimeoutError("slow"), "x"), errors.EngineTimeout)
    assert isinstance(errors.translate(_sdk_error_from_curl(28, "Operation timed out"), "x"),
                      errors.EngineTimeout)


def test_the_decorator_lets_no_sdk_exception_through():
    @translated("doing it")
    def failing():
        raise sdk.Error("boom", code=500)

    with pytest.raises(errors.EngineError, match="doing it") as info:
        failing()
    assert not isinstance(info.value, sdk.Error)
