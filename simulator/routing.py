"""Requests, answers and the route table of the API under /ovirt-engine/api."""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from simulator import xmlio
from simulator.errors import ApiError, not_found

UUID_RE = re.compile(r"^[0-9a-fA-F-]{8,}$|^\d+$")


@dataclass
class Request:
    """One API call: method, path below /ovirt-engine/api/, query, headers and body."""

    method: str
    path: str
    query: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    body: bytes = b""
    params: dict = field(default_factory=dict)

    @classmethod
    def of(cls, method: str, raw_path: str, headers, body: bytes) -> "Request":
        """Build a request from the raw path (with query string) below /ovirt-engine/api."""
        path, _, query = raw_path.partition("?")
        values = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        return cls(method, path.strip("/"), values, {k.lower(): v for k, v in headers.items()},
                   body)

    @property
    def all_content(self) -> bool:
        """Whether the client asked for all content (query parameter or the SDK's header)."""
        value = self.query.get("all_content") or self.headers.get("all-content") or ""
        return value.lower() == "true"

    def xml(self):
        """The parsed XML body."""
        return xmlio.parse(self.body)

    @property
    def kinds(self) -> tuple[str, str]:
        """What fault rules match: method and the last segment that is not an id ("POST finalize"),
        and the same with the segment before it ("POST backups/finalize")."""
        names = [s for s in self.path.split("/") if s and not UUID_RE.match(s)] or ["api"]
        return f"{self.method} {names[-1]}", f"{self.method} {'/'.join(names[-2:])}"


@dataclass
class Answer:
    """An XML answer: status, root tag and the value to render."""

    status: int
    tag: str
    value: object

    def body(self) -> bytes:
        """The rendered XML document."""
        return xmlio.document(self.tag, self.value)


def ok(tag: str, value) -> Answer:
    """A 200 answer."""
    return Answer(200, tag, value)


def created(tag: str, value) -> Answer:
    """A 201 answer, as the engine gives for an added entity."""
    return Answer(201, tag, value)


def action_done(extra: dict | None = None) -> Answer:
    """The answer to an action: `<action>` with status complete."""
    return Answer(200, "action", {"status": "complete", **(extra or {})})


def removed() -> Answer:
    """The answer to DELETE: 200 (the SDK rejects 204)."""
    return Answer(200, "action", {"status": "complete"})


Handler = Callable[[Request], Answer]


class Router:
    """Maps method and path patterns such as "vms/{vm}/snapshots" to handlers."""

    def __init__(self):
        self.routes: list[tuple[str, re.Pattern, Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """Register a handler; {name} segments become request params."""
        regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.strip("/")) + "$"
        self.routes.append((method, re.compile(regex), handler))

    def dispatch(self, request: Request) -> Answer:
        """Call the handler of the request's route, or answer 404/405."""
        path_matched = False
        for method, regex, handler in self.routes:
            match = regex.match(request.path)
            if match is None:
                continue
            path_matched = True
            if method == request.method:
                request.params = match.groupdict()
                return handler(request)
        if path_matched:
            raise ApiError(405, "Method Not Allowed",
                           f"{request.method} is not supported on /{request.path}.")
        raise not_found("resource")
