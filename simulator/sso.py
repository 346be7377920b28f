"""oVirt's SSO as the SDK uses it: a password grant for a bearer token, and logout (JSON)."""

import base64
import hmac
import secrets
from urllib.parse import parse_qs

USERNAME = "admin@internal"
MAX_TOKENS = 1000


def _password_ok(engine, username: str | None, password: str | None) -> bool:
    expected = engine.store.meta.get("password", "")
    return (username in (USERNAME, "admin@ovirt", "admin@internal-authz")
            and hmac.compare_digest((password or "").encode(), expected.encode()))


def token(engine, body: bytes) -> tuple[int, dict]:
    """POST /ovirt-engine/sso/oauth/token: a token, or an error the SDK raises AuthError for."""
    form = {k: v[-1] for k, v in parse_qs(body.decode(errors="replace")).items()}
    if form.get("grant_type") != "password":
        return 400, {"error_code": "unsupported_grant_type",
                     "error": "The grant type must be 'password'."}
    if not _password_ok(engine, form.get("username"), form.get("password")):
        return 400, {"error_code": "access_denied",
                     "error": f"Cannot authenticate user '{form.get('username')}': The username "
                              "or password is incorrect."}
    issued = secrets.token_urlsafe(32)
    with engine.lock:
        tokens = engine.store.meta.setdefault("tokens", [])
        tokens.append(issued)
        del tokens[:-MAX_TOKENS]
        engine.save()
    return 200, {"access_token": issued, "scope": "ovirt-app-api", "token_type": "bearer",
                 "exp": "9999999999999"}


def logout(engine, body: bytes) -> tuple[int, dict]:
    """POST /ovirt-engine/services/sso-logout: forget the token."""
    form = {k: v[-1] for k, v in parse_qs(body.decode(errors="replace")).items()}
    with engine.lock:
        tokens = engine.store.meta.setdefault("tokens", [])
        if form.get("token") in tokens:
            tokens.remove(form["token"])
            engine.save()
    return 200, {}


def authorized(engine, header: str | None) -> bool:
    """Whether an Authorization header carries a live token (or basic auth as the admin)."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() in engine.store.meta.get("tokens", [])
    if scheme.lower() == "basic":
        try:
            username, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return _password_ok(engine, username, password)
    return False
