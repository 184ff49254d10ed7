"""Business errors: a machine-readable code, a human message and the HTTP status they map to."""


class JifenError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}  # extra fields of the error body (e.g. suggestions)
        if code:
            self.code = code
        if status:
            self.status = status


class Unauthorized(JifenError):
    status = 401
    code = "unauthorized"


class Forbidden(JifenError):
    status = 403
    code = "forbidden"


class NotFound(JifenError):
    status = 404
    code = "not_found"


class Conflict(JifenError):
    status = 409
    code = "conflict"


class InsufficientPoints(JifenError):
    status = 409
    code = "insufficient_points"


class InvalidRequest(JifenError):
    status = 422
    code = "invalid_request"


class IdempotencyConflict(JifenError):
    status = 409
    code = "idempotency_key_reused"
