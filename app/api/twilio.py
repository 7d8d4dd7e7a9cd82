"""``POST /twilio/voice``: the call webhook Twilio calls when a call arrives.

It is authenticated by ``X-Twilio-Signature`` (not an API key): HMAC-SHA1, keyed with
``TWILIO_AUTH_TOKEN``, of the full URL Twilio called followed by every POST parameter as
name then value, sorted by name, base64-encoded (twilio.com/docs/usage/security). Behind a
proxy Twilio signs the public URL, so ``PUBLIC_BASE_URL`` (else ``X-Forwarded-Proto`` /
``X-Forwarded-Host``) gives it. A valid call starts a warmup of the voice it names without
waiting for it, and is answered with TwiML that connects the call's media stream to the
bridge (``TWILIO_STREAM_URL``), passing the voice on as a stream parameter.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from urllib.parse import parse_qsl
from xml.sax.saxutils import quoteattr

from fastapi import APIRouter, Request, Response

from app.api.deps import get_runtime
from app.errors import Forbidden, InvalidVoiceId, NotConfigured, TTSError
from app.runtime import Runtime
from app.sessions.oneshot import warmup as run_warmup
from app.voices.validation import validate_voice_id

log = logging.getLogger(__name__)
router = APIRouter()

MAX_BODY_BYTES = 64 * 1024


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """The ``X-Twilio-Signature`` Twilio sends for ``url`` and these POST parameters."""
    payload = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode("ascii")


def signature_valid(auth_token: str, url: str, params: list[tuple[str, str]],
                    signature: str | None) -> bool:
    if not signature:
        return False
    expected = twilio_signature(auth_token, url, params)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace"))


def public_url(request: Request, base: str | None) -> str:
    """The URL Twilio called, as it saw it."""
    query = request.url.query
    suffix = request.url.path + (f"?{query}" if query else "")
    if base:
        return base.rstrip("/") + suffix
    proto = request.headers.get("x-forwarded-proto", request.url.scheme).split(",")[0].strip()
    host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
    return f"{proto}://{host.split(',')[0].strip()}{suffix}"


def twiml_stream(stream_url: str, voice_id: str | None) -> str:
    param = (
        f"<Parameter name=\"voice_id\" value={quoteattr(voice_id)}/>" if voice_id else ""
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={quoteattr(stream_url)}>{param}</Stream>"
        "</Connect></Response>"
    )


def _start_warmup(runtime: Runtime, voice_id: str) -> None:
    async def warm() -> None:
        try:
            ms = await run_warmup(runtime, voice_id, "realtime")
            log.info("call warmup done: voice %s in %.0f ms", voice_id, ms)
        except TTSError as exc:
            log.warning("call warmup failed: voice %s: %s", voice_id, exc.code)
        except Exception:
            log.exception("call warmup crashed: voice %s", voice_id)

    task = asyncio.create_task(warm(), name="twilio-warmup")
    runtime.background.add(task)
    task.add_done_callback(runtime.background.discard)


@router.post("/twilio/voice", response_class=Response,
             responses={200: {"content": {"application/xml": {}}}})
async def twilio_voice(request: Request) -> Response:
    """Incoming call: check the signature, warm the voice, connect the media stream."""
    runtime = get_runtime(request)
    settings = runtime.settings
    if not settings.twilio_auth_token or not settings.twilio_stream_url:
        raise NotConfigured("Twilio webhook not configured (TWILIO_AUTH_TOKEN, TWILIO_STREAM_URL)")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise Forbidden("Request body too large for a Twilio webhook")
    params = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    url = public_url(request, settings.public_base_url)
    if not signature_valid(settings.twilio_auth_token, url, params,
                           request.headers.get("x-twilio-signature")):
        log.warning("twilio webhook: bad signature for %s", request.url.path)
        raise Forbidden("Invalid X-Twilio-Signature")
    name = settings.twilio_voice_param
    raw_voice = dict(params).get(name) or request.query_params.get(name)
    voice_id: str | None = None
    if raw_voice:
        try:
            voice_id = validate_voice_id(raw_voice)
        except InvalidVoiceId:
            log.warning("twilio webhook: invalid voice id ignored")
    if voice_id is not None:
        _start_warmup(runtime, voice_id)
    call_sid = dict(params).get("CallSid", "-")[:64]
    log.info("twilio call %s: connecting stream (voice %s)", call_sid, voice_id or "-")
    return Response(twiml_stream(settings.twilio_stream_url, voice_id),
                    media_type="application/xml")
