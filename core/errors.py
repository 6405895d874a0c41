"""Domain errors raised by services in both apps, and translated to HTTP by the API's exception handler.

A service raises the error that names what is wrong in words a person can act on; the API, the admin and
management commands each decide how to show it.
"""


class DomainError(Exception):
    """A request that the rules refuse. `field` names the input at fault, when there is one."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class InvalidInput(DomainError):
    status_code = 400
    code = "invalid"


class NotAllowed(DomainError):
    """The request is well formed, but this person may not make it (another reviewer's item, say)."""

    status_code = 403
    code = "permission_denied"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class ImmutableRecord(Conflict):
    code = "immutable"
