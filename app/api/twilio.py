"""``POST /twilio/voice``: the call webhook Twilio calls when a call arrives.

It is authenticated by ``X-Twilio-Signature`` (not an API key): HMAC-SHA1, keyed with
``TWILIO_AUTH_TOKEN``, of the full URL Twilio called followed by every POST parameter as
name then value, sorted by name, base64-encoded (twilio.com/docs/usage/security). Twilio's
own validators accept the URL with and without the default port (``:443`` / ``:80``), and
so does this. Behind a proxy Twilio signs the public URL: ``PUBLIC_BASE_URL`` gives it, or
``X-Forwarded-Proto`` / ``X-Forwarded-Host`` when the request comes from one of
``TRUSTED_PROXIES`` (from anyone else those headers are ignored: a client could pick them).
A valid call starts a warmup of the voice it names without waiting for it (deduplicated,
in a small pool that takes no call slot: ``app.sessions.warmups``), and is answered with
TwiML that connects the call's media stream to the bridge (``TWILIO_STREAM_URL``), passing
the voice on as a stream parameter. A replay of the same signed request within
``TWILIO_REPLAY_WINDOW_S`` gets the same TwiML and starts nothing (``app.api.twilio_replay``).
The body's size is bounded before it is read (``TWILIO_MAX_REQUEST_BYTES``, ``app.api.body_limit``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from urllib.parse import parse_qsl, urlsplit, urlunsplit
from xml.sax.saxutils import quoteattr

from fastapi import APIRouter, Request, Response

from app.api.deps import get_runtime
from app.api.twilio_replay import ReplayCache
from app.errors import Forbidden, InvalidVoiceId, NotConfigured
from app.sessions.warmups import WarmupPool
from app.voices.validation import validate_voice_id

log = logging.getLogger(__name__)
router = APIRouter()


def twilio_signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """The ``X-Twilio-Signature`` Twilio sends for ``url`` and these POST parameters.

    Names sorted, and a repeated name's distinct values sorted, as Twilio's own
    ``RequestValidator`` does.
    """
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    payload = url + "".join(name + value for name in sorted(values)
                            for value in sorted(values[name]))
    digest = hmac.new(auth_token.encode("utf-8"), payload.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode("ascii")


def port_variants(url: str) -> list[str]:
    """``url`` without its port and with the scheme's default one (Twilio signs either)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    default = 443 if parts.scheme == "https" else 80
    try:
        port = parts.port
    except ValueError:
        return [url]
    without = urlunsplit(parts._replace(netloc=host))
    with_port = urlunsplit(parts._replace(netloc=f"{host}:{port or default}"))
    return [without, with_port]


def signature_valid(auth_token: str, url: str, params: list[tuple[str, str]],
                    signature: str | None) -> bool:
    if not signature:
        return False
    given = signature.encode("utf-8", "replace")
    ok = False
    for candidate in port_variants(url):  # both always: the time says nothing of which
        expected = twilio_signature(auth_token, candidate, params)
        ok |= hmac.compare_digest(expected.encode("ascii"), given)
    return ok


def public_url(request: Request, base: str | None) -> str:
    """The URL Twilio called, as it saw it."""
    query = request.url.query
    suffix = request.url.path + (f"?{query}" if query else "")
    if base:
        return base.rstrip("/") + suffix
    host = request.headers.get("host", "")
    proto = request.url.scheme
    if request.scope.get("state", {}).get("via_trusted_proxy"):
        proto = request.headers.get("x-forwarded-proto", proto).split(",")[0].strip()
        host = request.headers.get("x-forwarded-host") or host
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


@router.post("/twilio/voice", response_class=Response,
             responses={200: {"content": {"application/xml": {}}}})
async def twilio_voice(request: Request) -> Response:
    """Incoming call: check the signature, warm the voice, connect the media stream."""
    runtime = get_runtime(request)
    settings = runtime.settings
    if not settings.twilio_auth_token or not settings.twilio_stream_url:
        raise NotConfigured("Twilio webhook not configured (TWILIO_AUTH_TOKEN, TWILIO_STREAM_URL)")
    body = await request.body()  # bounded by BodyLimitMiddleware before it is read
    params = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    url = public_url(request, settings.public_base_url)
    signature = request.headers.get("x-twilio-signature")
    if not signature or not signature_valid(settings.twilio_auth_token, url, params, signature):
        log.warning("twilio webhook: bad signature for %s", request.url.path)
        raise Forbidden("Invalid X-Twilio-Signature")
    call_sid = dict(params).get("CallSid", "-")[:64]
    replays: ReplayCache = request.app.state.twilio_replays
    answer = replays.get(call_sid, signature)
    if answer is not None:
        log.info("twilio call %s: replayed webhook answered again, nothing started", call_sid)
        return Response(answer, media_type="application/xml")
    name = settings.twilio_voice_param
    raw_voice = dict(params).get(name) or request.query_params.get(name)
    voice_id: str | None = None
    if raw_voice:
        try:
            voice_id = validate_voice_id(raw_voice)
        except InvalidVoiceId:
            log.warning("twilio webhook: invalid voice id ignored")
    if voice_id is not None:
        warmups: WarmupPool = request.app.state.warmups
        warmups.submit(runtime, voice_id)
    log.info("twilio call %s: connecting stream (voice %s)", call_sid, voice_id or "-")
    answer = twiml_stream(settings.twilio_stream_url, voice_id)
    replays.put(call_sid, signature, answer)
    return Response(answer, media_type="application/xml")
