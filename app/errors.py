"""The typed error family of the service.

Every failure that a client can see is one of these. Each carries a machine-readable
``code``, the HTTP status it maps to, and whether retrying may help. HTTP routes map them
to responses in ``app.api.errors`` (the OpenAI route in its own envelope); on sockets they
become ``Error`` events that the connection's serializer shapes. Nothing matches on
message text.
"""

from __future__ import annotations


class TTSError(Exception):
    """Base class: a failure with a stable code and a message fit for a client."""

    code = "internal_error"
    status_code = 500
    retryable = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"error": self.message, "code": self.code}


class InvalidRequest(TTSError):
    code = "invalid_request"
    status_code = 400


class InvalidText(InvalidRequest):
    """Text no engine should see: control characters, lone surrogates, nothing to speak."""

    code = "invalid_text"


class InvalidVoiceId(InvalidRequest):
    code = "invalid_voice_id"


class VoiceNotFound(TTSError):
    code = "voice_not_found"
    status_code = 404


class VoiceInvalid(TTSError):
    """The clip exists but is not usable audio (not audio, too short, too long)."""

    code = "voice_invalid"
    status_code = 422


class StorageUnavailable(TTSError):
    code = "storage_unavailable"
    status_code = 503
    retryable = True


class Busy(TTSError):
    code = "busy"
    status_code = 503
    retryable = True


class EngineError(TTSError):
    code = "engine_error"
    status_code = 500
    retryable = True


class EngineUnavailable(TTSError):
    code = "engine_unavailable"
    status_code = 503
    retryable = True


class Unauthorized(TTSError):
    """No API key, or not one of ``API_KEYS``."""

    code = "unauthorized"
    status_code = 401


class Forbidden(TTSError):
    """A Twilio webhook whose ``X-Twilio-Signature`` does not match."""

    code = "invalid_signature"
    status_code = 403


class NotConfigured(TTSError):
    """A route whose feature is not configured on this replica (the Twilio webhook)."""

    code = "not_configured"
    status_code = 404


class NotFound(TTSError):
    code = "not_found"
    status_code = 404


class SlowConsumer(TTSError):
    """A socket client that stopped reading past its send buffer."""

    code = "slow_consumer"
    status_code = 503


class PayloadTooLarge(TTSError):
    """A request body over ``MAX_REQUEST_BYTES`` (or its route's smaller bound)."""

    code = "request_too_large"
    status_code = 413


class RequestTimeout(TTSError):
    """A request body that did not arrive within ``REQUEST_BODY_TIMEOUT_S``."""

    code = "request_timeout"
    status_code = 408
    retryable = True


class EngineFault(TTSError):
    """The engine hit a fault that poisons it (a CUDA error): every later call would fail.

    The replica stops taking work (``/ready`` 503), drains and exits non-zero so that the
    orchestrator replaces it; meanwhile clients get this, retryable on another replica.
    """

    code = "engine_fault"
    status_code = 503
    retryable = True
