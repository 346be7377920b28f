"""The project's exceptions for everything that can go wrong talking to an oVirt engine.

The facade in plugin.engine raises only these; callers never see ovirtsdk4 or
pycurl exceptions. Each carries a message meant for an administrator (what is
wrong and what to do) and, where the engine answered, its own reason and detail.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import ovirtsdk4 as sdk
import pycurl

CA_HINT = (
    "Give the engine's CA certificate (PEM), e.g. from "
    "https://ENGINE/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA"
)

# libcurl error codes, by what they mean to an administrator.
_UNREACHABLE_CODES = {
    pycurl.E_COULDNT_CONNECT,
    pycurl.E_COULDNT_RESOLVE_HOST,
    getattr(pycurl, "E_COULDNT_RESOLVE_PROXY", 5),
    pycurl.E_GOT_NOTHING,
    pycurl.E_RECV_ERROR,
    pycurl.E_SEND_ERROR,
}
_CERTIFICATE_CODES = {
    pycurl.E_PEER_FAILED_VERIFICATION,  # also E_SSL_CACERT (60) in current libcurl
    51,  # CURLE_PEER_FAILED_VERIFICATION before libcurl 7.62
    pycurl.E_SSL_CACERT_BADFILE,
    getattr(pycurl, "E_SSL_ISSUER_ERROR", 83),
}
_TLS_HANDSHAKE_CODE = pycurl.E_SSL_CONNECT_ERROR
_TIMEOUT_CODE = pycurl.E_OPERATION_TIMEDOUT


class EngineError(Exception):
    """Any failure of a call to an oVirt engine.

    ``reason`` and ``detail`` are the engine's own words (from its fault answer)
    when it answered; ``code`` is the HTTP status when there was one.
    """

    def __init__(self, message: str, *, reason: str = "", detail: str = "", code: int | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.detail = detail
        self.code = code

    def __str__(self) -> str:
        return self.message


class EngineUnreachable(EngineError):
    """The engine's address can't be resolved or nothing answers there."""


class CertificateNotTrusted(EngineError):
    """The engine's TLS certificate is not signed by the CA given for the manager."""


class AuthenticationFailed(EngineError):
    """The engine refused the user name or password (or the user lacks permission)."""


class NotFound(EngineError):
    """The engine has no such object (HTTP 404)."""


class Conflict(EngineError):
    """The engine refused the operation because of the object's state (HTTP 409)."""


class EngineTimeout(EngineError):
    """A call, or a wait for a state, took longer than its deadline."""


class OperationFailed(EngineError):
    """An operation the engine accepted ended in failure (backup failed, transfer failed, disk illegal)."""


class WaitAborted(EngineError):
    """A wait was stopped by the caller (e.g. the session was cancelled)."""


P = ParamSpec("P")
R = TypeVar("R")


def translate(exc: BaseException, action: str) -> EngineError:
    """The project's exception for an ovirtsdk4/pycurl exception raised while doing ``action``."""
    if isinstance(exc, EngineError):
        return exc
    curl = _curl_error_of(exc)
    if curl is not None:
        return _from_curl(curl, action)
    if isinstance(exc, sdk.AuthError):
        return AuthenticationFailed(
            f"The engine refused the login while {action}: check the user name (e.g. "
            f"admin@internal) and the password. Engine said: {_short(exc)}",
            reason=str(exc),
        )
    if isinstance(exc, sdk.Error):
        return _from_sdk_error(exc, action)
    return EngineError(f"Unexpected failure while {action}: {exc}")


def is_not_found(exc: BaseException) -> bool:
    """True for the SDK's answer that the object doesn't exist (HTTP 404).

    Inside a @translated function the SDK raises its own exceptions, not the
    project's NotFound: "gone already is fine" must test for this one.
    """
    return isinstance(exc, sdk.NotFoundError) or getattr(exc, "code", None) == 404


def translated(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: the function's SDK/pycurl exceptions become the project's, naming ``action``."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except EngineError:
                raise
            except (sdk.Error, pycurl.error) as exc:
                raise translate(exc, action) from exc

        return wrapper

    return decorate


def _curl_error_of(exc: BaseException) -> pycurl.error | None:
    # The SDK re-raises libcurl errors as its own Error inside the except
    # block, so the original code is only on the exception's context.
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, pycurl.error):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _from_curl(error: pycurl.error, action: str) -> EngineError:
    code = error.args[0] if error.args else None
    text = error.args[1] if len(error.args) > 1 else str(error)
    if code in _CERTIFICATE_CODES or (code == _TLS_HANDSHAKE_CODE and "certificate" in text.lower()):
        return CertificateNotTrusted(
            f"The engine's TLS certificate is not trusted ({text}). {CA_HINT}",
            reason=text,
        )
    if code == _TLS_HANDSHAKE_CODE:
        return EngineUnreachable(
            f"The TLS handshake with the engine failed while {action} ({text}): "
            "check that the URL is the engine's HTTPS address.",
            reason=text,
        )
    if code in _UNREACHABLE_CODES:
        return EngineUnreachable(
            f"The engine can't be reached while {action} ({text}): check the URL "
            "(https://ENGINE/ovirt-engine/api), DNS and that the engine is running.",
            reason=text,
        )
    if code == _TIMEOUT_CODE:
        return EngineTimeout(f"The engine did not answer in time while {action} ({text}).", reason=text)
    return EngineError(f"The connection to the engine failed while {action} ({text}).", reason=text)


def _from_sdk_error(exc: sdk.Error, action: str) -> EngineError:
    reason, detail = _fault_of(exc)
    words = detail or reason or _short(exc)
    fields = {"reason": reason, "detail": detail, "code": exc.code}
    if isinstance(exc, sdk.NotFoundError) or exc.code == 404:
        return NotFound(f"The engine found no such object while {action}: {words}", **fields)
    if isinstance(exc, sdk.ConnectionError):
        return EngineUnreachable(
            f"The engine can't be reached while {action}: {_short(exc)}. Check the URL "
            "(https://ENGINE/ovirt-engine/api), DNS and that the engine is running.",
            **fields,
        )
    if isinstance(exc, sdk.TimeoutError):
        return EngineTimeout(f"The engine did not answer in time while {action}.", **fields)
    if exc.code == 409:
        return Conflict(f"The engine refused {action} because of the object's state: {words}", **fields)
    if exc.code in (401, 403):
        return AuthenticationFailed(
            f"The engine refused {action}: the user lacks the permission or the login expired. {words}",
            **fields,
        )
    if "content type" in str(exc) and "isn't the expected" in str(exc):
        return EngineError(
            f"The server did not answer as an oVirt engine while {action}: check that the URL "
            f"ends in /ovirt-engine/api. ({_short(exc)})",
            **fields,
        )
    return EngineError(f"The engine failed {action}: {words}", **fields)


def _fault_of(exc: sdk.Error) -> tuple[str, str]:
    fault = getattr(exc, "fault", None)
    if fault is None:
        return "", ""
    return (fault.reason or "").strip(), (fault.detail or "").strip().strip("[]")


def _short(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if len(text) <= 400 else text[:397] + "..."
