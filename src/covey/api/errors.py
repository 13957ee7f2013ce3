"""The OpenAI error envelope: {"error": {"message", "type", "param", "code"}} with the matching status."""

from __future__ import annotations

from starlette.responses import JSONResponse

from covey import errors


class ApiError(errors.CoveyError):
    """An HTTP error with the OpenAI envelope's type, code and param."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, hint="")
        self.status, self.type, self.code, self.param = status, type, code, param
        self.headers = headers or {}

    def envelope(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.envelope(), status_code=self.status, headers=self.headers)


def from_covey(exc: errors.CoveyError) -> ApiError:
    """Map a covey error to its HTTP status and OpenAI code; the message keeps covey's hint."""
    if isinstance(exc, ApiError):
        return exc
    text = str(exc)
    if isinstance(exc, errors.PromptTooLong):
        return ApiError(400, text, code="context_length_exceeded", param="messages")
    if isinstance(exc, errors.UnknownModel):
        return ApiError(404, text, code="model_not_found", param="model")
    if isinstance(exc, (errors.BadRequest, errors.ConfigError)):
        return ApiError(400, text, code="invalid_request")
    if isinstance(exc, errors.NodeBusy):
        return ApiError(503, text, type="server_error", code="node_busy", headers={"Retry-After": "2"})
    if isinstance(exc, (errors.NoCapableNode, errors.NodeUnavailable)):
        return ApiError(503, text, type="server_error", code="no_capable_node")
    return ApiError(500, text, type="server_error", code="internal_error")
