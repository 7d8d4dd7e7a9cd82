"""The playground page in headless Chromium (Debian's ``chromium``, driven by Playwright).

No browser is downloaded: Playwright launches ``/usr/bin/chromium`` (``make test`` installs
it with apt-get when missing). The page speaks through the real server with the piper
engine; ``window.playground.stats`` tells what the page scheduled and highlighted.
Set ``PLAYGROUND_SCREENSHOTS=DIR`` to keep the idle and speaking screenshots (docs/ has them).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import LiveServer, live_server, make_settings

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
KEY = "browser-test-key"
TEXT = ("Thanks for calling the Riverside dental clinic, this is Joe speaking. "
        "Your appointment with Dr. Smith is on Friday at three thirty in the afternoon. "
        "Is there anything else I can help you with today?")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"{CHROMIUM} missing: make test installs Debian's chromium"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with live_server(make_settings(tts_engine="piper", api_keys=KEY)) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="playground-chromium-")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1000, "height": 820},
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser: Any, server: LiveServer) -> Iterator[Any]:
    page = browser.new_page()
    page.goto(server.http + "/")
    page.fill("#api-key", KEY)
    page.wait_for_function("document.querySelectorAll('#preset option').length > 1")
    try:
        yield page
    finally:
        page.close()


def stats(page: Any) -> dict[str, Any]:
    return page.evaluate("() => ({...window.playground.stats})")  # type: ignore[no-any-return]


def screenshot(page: Any, name: str) -> None:
    folder = os.environ.get("PLAYGROUND_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def test_speak_schedules_audio_moves_the_highlight_and_stop_silences(page: Any) -> None:
    assert page.title() == "Telephony TTS playground"
    assert "piper" in page.text_content("#backend")
    screenshot(page, "playground-idle.png")
    page.fill("#text", TEXT)
    page.check("input[value='mulaw']")
    page.click("#speak")
    # Audio buffers are scheduled as frames arrive, and the first clause lights up.
    page.wait_for_function(
        "playground.stats.buffersScheduled > 0 && playground.stats.currentClause >= 0",
        timeout=20_000,
    )
    first = stats(page)
    assert first["ttfaMs"] is not None and first["ttfaMs"] < 10_000
    assert page.text_content("#ttfa").endswith("ms")
    assert page.locator("#transcript .clause.current").count() == 1
    # The highlight moves on to a later clause as the audio plays.
    page.wait_for_function("window.playground.stats.currentClause >= 1", timeout=20_000)
    screenshot(page, "playground-speaking.png")
    moved = stats(page)
    assert moved["highlightChanges"] >= 2
    assert moved["playing"] is True
    assert page.locator("#transcript .clause.current").count() == 1
    # Stop: playback stops at once, the server acknowledges the cancel, nothing plays after.
    page.click("#stop")
    page.wait_for_function("window.playground.stats.cancelled === true", timeout=10_000)
    stopped = stats(page)
    assert stopped["playing"] is False and stopped["state"] == "stopped"
    page.wait_for_timeout(400)
    later = stats(page)
    assert later["buffersScheduled"] == stopped["buffersScheduled"]
    assert later["playing"] is False and later["currentClause"] == -1
    assert page.is_hidden("#error")


def test_full_rate_mode_plays_pcm_24k(page: Any) -> None:
    page.fill("#text", "Hello there, this is the full rate mode of the playground.")
    page.check("input[value='pcm_24000']")
    page.click("#speak")
    page.wait_for_function("window.playground.stats.state === 'done'", timeout=20_000)
    done = stats(page)
    assert done["buffersScheduled"] == done["framesReceived"] > 0
    assert done["clauses"] >= 1
    assert page.text_content("#total").endswith("ms")


def test_unknown_voice_is_shown_as_an_error(page: Any) -> None:
    page.fill("#voice", "nobody_here")
    page.click("#speak")
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert "Voice not found: nobody_here" in page.text_content("#error")
    assert stats(page)["buffersScheduled"] == 0
    assert page.is_enabled("#speak")


def test_a_wrong_api_key_is_shown_as_an_error(page: Any) -> None:
    page.fill("#api-key", "wrong-key")
    page.click("#speak")
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert "Not authorized" in page.text_content("#error")
