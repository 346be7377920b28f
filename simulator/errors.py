"""Errors answered the way the oVirt engine answers them: a status and a `<fault>` body."""


class ApiError(Exception):
    """An error answer: HTTP status, the fault's reason and detail."""

    def __init__(self, status: int, reason: str, detail: str = ""):
        super().__init__(f"{status} {reason}: {detail}")
        self.status = status
        self.reason = reason
        self.detail = detail


def not_found(what: str = "entity") -> ApiError:
    """Unknown id: oVirt answers 404 with an empty-ish fault."""
    return ApiError(404, "Not Found", f"The requested {what} was not found.")


def conflict(detail: str) -> ApiError:
    """A validation failure of the engine (oVirt's 'canDoAction'), answered with 409."""
    return ApiError(409, "Operation Failed", f"[{detail}]")


def bad_request(detail: str, reason: str = "Incomplete parameters") -> ApiError:
    """A request missing what it needs, answered with 400."""
    return ApiError(400, reason, detail)
