"""Three replicas behind a real load balancer: HAProxy (Debian's package) on loopback.

Three ``python -m app`` processes (synthetic engine, 3 call slots each) sit behind HAProxy
with ``balance leastconn`` and a health check on ``/ready`` every 200 ms; HAProxy names the
replica that took each call in an ``X-Replica`` response header. The tests show:

- calls spread across the replicas;
- a full replica (every slot held by calls that bypass the balancer) gets no new call
  while the others have room; without the ``/ready`` check leastconn would pick it first;
- a replica sent SIGTERM mid-run finishes the calls it has while new calls go to the
  others, no call fails, and the process exits 0; started again, it takes calls again;
- a clip replaced in the bucket (a loopback ``ClipServer``) reaches every replica through
  revalidation (``VOICE_REVALIDATE_SECONDS=1`` here) while calls go on.

The replicas use ``SHUTDOWN_DEREGISTER_SECONDS=2``: ``/ready`` turns 503 two seconds before
the port closes, so HAProxy stops routing there first (Kubernetes uses preStop for this).
Cost: about 30-60 s on a loaded 2-core machine (mostly the replicas' start-up).
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from app.config import Settings
from tests.servers import free_port
from tests.voice_servers import Clip, ClipServer, make_clip
from tests.wsclient import WSClient

ROOT = Path(__file__).resolve().parent.parent
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
SLOTS = 3
DEREGISTER_S = 2.0
REVALIDATE_S = 1.0
REPLY = "Hello there, this is a reply from the agent. " * 3  # about 9 s of audio

pytestmark = pytest.mark.skipif(
    not Path(HAPROXY).exists(), reason="haproxy missing: make test installs Debian's haproxy"
)


class Replica:
    """One ``python -m app`` process running this checkout's code."""

    def __init__(self, name: str, workdir: Path, deregister_s: float = DEREGISTER_S,
                 bucket_url: str = "") -> None:
        self.name = name
        self.deregister_s = deregister_s
        self.bucket_url = bucket_url
        self.port = free_port()
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        own = {name.upper() for name in Settings.model_fields}
        env = {k: v for k, v in os.environ.items() if k.upper() not in own}
        env.update(
            PYTHONPATH=str(ROOT), HOST="127.0.0.1", PORT=str(self.port),
            TTS_ENGINE="synthetic", SYNTHETIC_RTF="0.2", MAX_CONCURRENT_STREAMS=str(SLOTS),
            SHUTDOWN_GRACE_SECONDS="20", SHUTDOWN_DEREGISTER_SECONDS=str(self.deregister_s),
            LOG_FORMAT="text", LOG_LEVEL="warning", VOICE_CACHE_DIR=str(self.workdir / "voices"),
            VOICE_REVALIDATE_SECONDS=str(REVALIDATE_S),
        )
        if self.bucket_url:
            env["CLOUDFLARE_R2_PUBLIC_URL"] = self.bucket_url
        log = (self.workdir / "replica.log").open("ab")
        # cwd is the replica's own folder, so no .env of the checkout is read.
        self.proc = subprocess.Popen([sys.executable, "-m", "app"], cwd=self.workdir, env=env,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready: {self.log()}")

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=5).json())

    def in_use(self) -> int:
        return int(self.health()["capacity"]["in_use"])

    def log(self) -> str:
        path = self.workdir / "replica.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class HAProxy:
    def __init__(self, replicas: list[Replica], workdir: Path) -> None:
        self.port = free_port()
        self.stats_port = free_port()
        servers = "\n".join(f"    server {r.name} 127.0.0.1:{r.port} check" for r in replicas)
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(f"""\
global
    maxconn 1000

defaults
    mode http
    timeout connect 1s
    timeout client 60s
    timeout server 60s
    timeout tunnel 60s
    # A slow answer is not a failed check (a loaded machine); only 503 or refused are.
    timeout check 2s
    # A refused connection (a replica that closed its port) is retried on another one.
    retries 3
    option redispatch 1
    http-reuse never
    default-server inter 200ms fall 1 rise 1

frontend tts
    bind 127.0.0.1:{self.port}
    default_backend replicas

backend replicas
    balance leastconn
    option httpchk GET /ready
    http-check expect status 200
    http-response set-header X-Replica %s
{servers}

listen stats
    bind 127.0.0.1:{self.stats_port}
    stats enable
    stats uri /stats
""")
        self.proc = subprocess.Popen([HAPROXY, "-f", str(self.config), "-db"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def states(self) -> dict[str, str]:
        text = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5).text
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        return {row["svname"]: row["status"] for row in rows if row["pxname"] == "replicas"}

    def wait_state(self, server: str, prefix: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.states().get(server, "").startswith(prefix):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{server} never {prefix}: {self.states()}")

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/synthesize-stream"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class Cluster:
    replicas: dict[str, Replica]
    lb: HAProxy
    bucket: ClipServer
    workdir: Path = field(default_factory=Path)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("replicas")
    bucket = ClipServer().__enter__()
    bucket.serve("alice", Clip(make_clip(6.0)))
    replicas = {name: Replica(name, workdir, bucket_url=bucket.url) for name in ("r1", "r2", "r3")}
    lb: HAProxy | None = None
    try:
        for replica in replicas.values():
            replica.start()
        for replica in replicas.values():
            replica.wait_ready()
        lb = HAProxy(list(replicas.values()), workdir)
        for name in replicas:
            lb.wait_state(name, "UP")
        yield Cluster(replicas, lb, bucket, workdir)
    finally:
        if lb is not None:
            lb.stop()
        for replica in replicas.values():
            replica.stop()
        bucket.__exit__(None, None, None)


class HeldCall:
    """A streaming call that has taken its slot (``init`` answered) and stays open."""

    def __init__(self, ws: Any, replica: str | None) -> None:
        self.ws = ws
        self.replica = replica

    @classmethod
    async def open(cls, url: str) -> HeldCall:
        conn = await websockets.connect(url)
        client = WSClient(conn)
        await client.send({"type": "init", "voice_id": "default"})
        answer = await client.recv()
        assert answer.get("type") == "ready", answer
        return cls(client, conn.response.headers.get("X-Replica"))

    async def close(self) -> None:
        await self.ws.close()


async def open_calls(url: str, n: int) -> list[HeldCall]:
    return [await HeldCall.open(url) for _ in range(n)]  # one after another: leastconn


async def test_calls_spread_across_replicas(cluster: Cluster) -> None:
    calls = await open_calls(cluster.lb.ws, 6)
    try:
        assert Counter(c.replica for c in calls) == {"r1": 2, "r2": 2, "r3": 2}
    finally:
        for call in calls:
            await call.close()


async def test_a_full_replica_gets_no_new_calls(cluster: Cluster) -> None:
    r1 = cluster.replicas["r1"]
    # Calls that reach r1 without the balancer fill it: HAProxy's leastconn sees zero
    # connections there and would pick it first; only its /ready check keeps calls away.
    direct = await open_calls(f"ws://127.0.0.1:{r1.port}/ws/synthesize-stream", SLOTS)
    through_lb: list[HeldCall] = []
    try:
        cluster.lb.wait_state("r1", "DOWN")
        through_lb = await open_calls(cluster.lb.ws, 2 * SLOTS)  # exactly the room left
        assert Counter(c.replica for c in through_lb) == {"r2": SLOTS, "r3": SLOTS}
    finally:
        for call in direct + through_lb:
            await call.close()
    cluster.lb.wait_state("r1", "UP")


@dataclass
class CallRecord:
    started: float
    ended: float = 0.0
    replica: str | None = None
    error: str | None = None


async def one_call(url: str) -> CallRecord:
    record = CallRecord(time.monotonic())
    try:
        async with await WSClient.connect(url) as call:
            record.replica = call.conn.response.headers.get("X-Replica")
            await call.send({"type": "init", "voice_id": "default"})
            await call.send({"type": "text", "content": REPLY})
            await call.send({"type": "end"})
            messages = await call.until(
                lambda m: m.get("type") == "complete" or "error" in m, within=60)
            if messages[-1].get("type") != "complete":
                record.error = str(messages[-1])
    except Exception as exc:  # every failure counts: refused, closed, timed out
        record.error = f"{type(exc).__name__}: {exc}"
    record.ended = time.monotonic()
    return record


async def test_sigterm_drains_one_replica_while_others_take_new_calls(cluster: Cluster) -> None:
    r1 = cluster.replicas["r1"]
    records: list[CallRecord] = []
    stop_at = [float("inf")]

    async def caller() -> None:
        while time.monotonic() < stop_at[0]:
            records.append(await one_call(cluster.lb.ws))

    # Two calls per remaining replica after the SIGTERM: one slot to spare on each, so the
    # health checks (200 ms apart) never see both of them full at once.
    workers = [asyncio.create_task(caller()) for _ in range(4)]
    try:
        deadline = time.monotonic() + 30
        while await asyncio.to_thread(r1.in_use) == 0:  # SIGTERM while r1 has calls
            assert time.monotonic() < deadline, "r1 never got a call"
            await asyncio.sleep(0.05)
        assert r1.proc is not None
        sigterm_at = time.monotonic()
        r1.proc.send_signal(signal.SIGTERM)
        stop_at[0] = sigterm_at + DEREGISTER_S + 4.0
        await asyncio.gather(*workers)
        exit_code = await asyncio.to_thread(r1.proc.wait, 40)
    finally:
        stop_at[0] = 0.0
        await asyncio.gather(*workers, return_exceptions=True)

    failed = [r for r in records if r.error]
    assert not failed, failed[:3]
    assert exit_code == 0, r1.log()
    on_r1 = [r for r in records if r.replica == "r1"]
    # r1's calls in progress at the SIGTERM ran to their end.
    assert any(r.started < sigterm_at < r.ended for r in on_r1)
    # Once r1 had left the balancer, every new call went to the others.
    late = [r for r in records if r.started > sigterm_at + DEREGISTER_S]
    assert late and all(r.replica in ("r2", "r3") for r in late)

    # Its return is picked up: started again on the same port, it takes calls.
    r1.start()
    r1.wait_ready()
    cluster.lb.wait_state("r1", "UP")
    calls = await open_calls(cluster.lb.ws, 3)
    try:
        assert "r1" in {c.replica for c in calls}
    finally:
        for call in calls:
            await call.close()


async def test_a_replaced_clip_reaches_every_replica(cluster: Cluster) -> None:
    http = f"http://127.0.0.1:{cluster.lb.port}"
    async with httpx.AsyncClient(base_url=http, timeout=30) as client:
        for replica in cluster.replicas.values():  # every replica has the voice cached
            r = await client.post(f"http://127.0.0.1:{replica.port}/preload", json=["alice"])
            assert r.json()["preloaded"] == {"alice": True}
        cluster.bucket.serve("alice", Clip(make_clip(7.0, f0=140.0)))
        replaced_at = time.monotonic()
        pending = set(cluster.replicas)
        while pending:
            assert time.monotonic() - replaced_at < 60, f"not replaced on {pending}"
            r = await client.post("/synthesize", json={"text": "Hi.", "voice_id": "alice"})
            assert r.status_code == 200, r.text  # calls go on throughout
            await asyncio.sleep(0.1)
            for name in list(pending):
                stats = await asyncio.to_thread(cluster.replicas[name].health)
                if stats["cache"]["revalidation"]["replaced"] >= 1:
                    pending.discard(name)
        took = time.monotonic() - replaced_at
    print(f"replaced clip on all 3 replicas after {took:.1f} s (interval {REVALIDATE_S:g} s)")
    assert cluster.bucket.conditional("alice") >= 3  # the checks were conditional


async def test_sigterm_first_turns_ready_off_while_still_taking_calls(tmp_path: Path) -> None:
    """SHUTDOWN_DEREGISTER_SECONDS: the balancer's check fails before the port closes."""
    replica = Replica("solo", tmp_path, deregister_s=3.0)
    replica.start()
    try:
        replica.wait_ready()
        assert replica.proc is not None
        replica.proc.send_signal(signal.SIGTERM)
        url = f"http://127.0.0.1:{replica.port}/ready"
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                if (await client.get(url)).status_code == 503:
                    break
                await asyncio.sleep(0.01)
            assert (await client.get(url)).status_code == 503
        # The port is still open and a call that arrives now is still served.
        record = await one_call(f"ws://127.0.0.1:{replica.port}/ws/synthesize-stream")
        assert record.error is None, record
        assert await asyncio.to_thread(replica.proc.wait, 40) == 0
    finally:
        replica.stop()
