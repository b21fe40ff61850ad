#!/usr/bin/env python3
"""tessera's fault suite: the release binary under load and faults, over
loopback only, with bounded loops. Standard library only.

    python3 reliability/suite.py soak [--minutes 10] [--connections 200]
    python3 reliability/suite.py kill9 [--rounds 3]
    python3 reliability/suite.py partition      # PostgreSQL only
    python3 reliability/suite.py slow
    python3 reliability/suite.py hostile [--seconds 60]
    python3 reliability/suite.py all --short    # what .ci/run runs

SQLite by default; set TESSERA_SUITE_POSTGRES=postgres://postgres@127.0.0.1:5432
to run against PostgreSQL (a database of its own is created and dropped).
Each scenario prints what it measured and exits non-zero when a promise
broke: a 5xx where none may be, an answered write lost after kill -9, a
revocation that did not hold, a fault the server did not recover from.
"""

import argparse
import asyncio
import base64
import hashlib
from http.cookiejar import CookieJar
import re
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# TESSERA_SUITE_BIN picks another build (CI uses the debug one it has).
BIN = os.environ.get("TESSERA_SUITE_BIN") or os.path.join(ROOT, "target", "release", "tessera")
FAILURES = []


def fail(message):
    FAILURES.append(message)
    print(f"FAIL: {message}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One tessera process with a database of its own."""

    def __init__(self, database_url=None, extra_env=None):
        self.dir = tempfile.mkdtemp(prefix="tessera-suite-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.pg_admin = None
        if database_url is None:
            pg = os.environ.get("TESSERA_SUITE_POSTGRES")
            if pg:
                name = f"tessera_suite_{os.getpid()}_{random.randrange(1 << 30)}"
                self.pg_admin = (pg.rstrip("/"), name)
                psql(pg, f"CREATE DATABASE {name}")
                database_url = f"{pg.rstrip('/')}/{name}"
            else:
                database_url = f"sqlite://{self.dir}/tessera.db"
        self.env = dict(os.environ)
        self.env.update(
            {
                "TESSERA__DATABASE__URL": database_url,
                "TESSERA__SERVER__LISTEN": f"127.0.0.1:{self.port}",
                "TESSERA__SERVER__ISSUER": self.base,
                "TESSERA__KEYS__ENCRYPTION_KEY_FILE": f"{self.dir}/kek",
                "TESSERA__THROTTLE__IP_MAX_FAILURES": "1000000",
                "TESSERA__DATABASE__CACHE_TTL_MS": "500",
                "TESSERA__LOG__LEVEL": "warn",
            }
        )
        self.env.update(extra_env or {})
        self.proc = None
        self.cli("migrate")

    def cli(self, *args):
        out = subprocess.run(
            [BIN, *args], env=self.env, capture_output=True, text=True, check=True
        )
        return out.stdout

    def start(self):
        self.log = open(f"{self.dir}/server.log", "a")
        self.proc = subprocess.Popen(
            [BIN, "serve"], env=self.env, stdout=self.log, stderr=self.log
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if get(self.base + "/health/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("tessera did not become ready")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def rss_mb(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def client(self, *extra):
        raw = self.cli(
            "client", "add", "--name", "suite", "--grant-type", "client_credentials",
            "--scope", "profile", "--json", *extra,
        )
        data = json.loads(raw)
        return data["client_id"], data["client_secret"]

    def close(self):
        self.stop()
        if self.pg_admin:
            base, name = self.pg_admin
            psql(base, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        shutil.rmtree(self.dir, ignore_errors=True)


def psql(url, sql):
    subprocess.run(["psql", f"{url}/postgres", "-qc", sql], check=True, capture_output=True)


def request(method, url, form=None, auth=None, timeout=10):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get(url):
    return request("GET", url)


def token_for(server, client):
    status, body = request(
        "POST", server.base + "/oauth2/token",
        {"grant_type": "client_credentials", "scope": "profile"}, client,
    )
    if status != 200:
        raise RuntimeError(f"token: {status} {body[:200]!r}")
    return json.loads(body)["access_token"]


def active(server, client, token):
    status, body = request(
        "POST", server.base + "/oauth2/introspect", {"token": token}, client
    )
    return status, (json.loads(body).get("active") if status == 200 else None)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


VERIFIER = "suite-verifier-" + "v" * 40
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=").decode()


def web_flow(server):
    """A signed-in browser and a first-party web app with offline access,
    so an authorization request answers a code at once: the soak then
    exchanges codes and rotates refresh tokens like real apps do."""
    raw = server.cli(
        "client", "add", "--name", "suite web", "--first-party",
        "--redirect-uri", "http://127.0.0.1:9/cb", "--scope", "openid",
        "--scope", "offline_access", "--grant-type", "authorization_code",
        "--grant-type", "refresh_token", "--json",
    )
    data = json.loads(raw)
    client = (data["client_id"], data["client_secret"])
    password = "suite-password-" + "p" * 12
    subprocess.run(
        [BIN, "user", "add", "suite", "--password-stdin"], env=server.env,
        input=password + "\n", capture_output=True, text=True, check=True,
    )
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    page = opener.open(server.base + "/login", timeout=10).read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"username": "suite", "password": password, "csrf_token": csrf}).encode()
    signin = urllib.request.Request(server.base + "/login", data=body, method="POST")
    signin.add_header("Content-Type", "application/x-www-form-urlencoded")
    signin.add_header("Origin", server.base)
    try:
        opener.open(signin, timeout=10)
    except urllib.error.HTTPError as answer:
        if answer.code != 303:
            raise RuntimeError(f"sign-in: {answer.code}")
    cookie = "Cookie: " + "; ".join(f"{c.name}={c.value}" for c in jar)
    path = "/oauth2/authorize?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": client[0],
        "redirect_uri": "http://127.0.0.1:9/cb", "scope": "openid offline_access",
        "state": "suite", "code_challenge": CHALLENGE, "code_challenge_method": "S256",
    })
    return client, cookie, path


def percentile(sorted_values, fraction):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))] * 1000


# ---------------------------------------------------------------- HTTP load


async def http(reader, writer, method, path, host, body=b"", headers=()):
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    head += list(headers)
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length, close, location = 0, False, None
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
        if name.lower() == "connection" and "close" in value.lower():
            close = True
        if name.lower() == "location":
            location = value.strip()
    data = await reader.readexactly(length) if length else b""
    return status, data, close, location


def form(fields):
    return urllib.parse.urlencode(fields).encode()


async def load(server, client, seconds, connections, report_every=10):
    """Mixed traffic: client-credentials tokens, introspection, revocation,
    JWKS, and the code flow (authorize, code exchange, then refresh
    rotations on the refresh token it got). Counts every status; p50/p99
    per endpoint and RSS per interval."""
    host = f"127.0.0.1:{server.port}"
    basic = "Authorization: Basic " + base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()
    ctype = "Content-Type: application/x-www-form-urlencoded"
    tokens = [token_for(server, client) for _ in range(20)]
    web, cookie, authorize_path = web_flow(server)
    web_basic = "Authorization: Basic " + base64.b64encode(f"{web[0]}:{web[1]}".encode()).decode()
    statuses, samples = {}, []
    latencies = {}  # endpoint -> latencies in this interval
    totals = {}  # endpoint -> every latency of the run
    stop_at = time.time() + seconds

    def count(key):
        statuses[key] = statuses.get(key, 0) + 1

    async def worker(n):
        rng = random.Random(n)
        refresh = None
        while time.time() < stop_at:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            except OSError:
                count("connect-error")
                await asyncio.sleep(0.1)
                continue

            async def call(label, method, path, body=b"", headers=()):
                started = time.perf_counter()
                status, data, close, location = await http(reader, writer, method, path, host, body, headers)
                elapsed = time.perf_counter() - started
                latencies.setdefault(label, []).append(elapsed)
                totals.setdefault(label, []).append(elapsed)
                count(status)
                return status, data, close, location

            try:
                while time.time() < stop_at:
                    pick = rng.random()
                    if pick < 0.25:
                        answer = await call("token cc", "POST", "/oauth2/token", form({"grant_type": "client_credentials", "scope": "profile"}), (basic, ctype))
                    elif pick < 0.55:
                        answer = await call("introspect", "POST", "/oauth2/introspect", form({"token": rng.choice(tokens)}), (basic, ctype))
                    elif pick < 0.65:
                        answer = await call("revoke", "POST", "/oauth2/revoke", form({"token": "not-a-token-%d" % rng.randrange(1 << 30)}), (basic, ctype))
                    elif pick < 0.75:
                        answer = await call("jwks", "GET", "/.well-known/jwks.json")
                    elif pick < 0.85 or refresh is None:
                        answer = await call("authorize", "GET", authorize_path, b"", (cookie,))
                        if answer[0] == 302 and answer[3]:
                            query = urllib.parse.parse_qs(urllib.parse.urlsplit(answer[3]).query)
                            if "code" in query:
                                if answer[2]:
                                    break
                                answer = await call("token code", "POST", "/oauth2/token", form({
                                    "grant_type": "authorization_code", "code": query["code"][0],
                                    "redirect_uri": "http://127.0.0.1:9/cb", "code_verifier": VERIFIER,
                                }), (web_basic, ctype))
                                if answer[0] == 200:
                                    refresh = json.loads(answer[1]).get("refresh_token")
                            else:
                                count("authorize-without-code")
                        else:
                            count(f"authorize-{answer[0]}")
                    else:
                        answer = await call("token refresh", "POST", "/oauth2/token", form({"grant_type": "refresh_token", "refresh_token": refresh}), (web_basic, ctype))
                        refresh = json.loads(answer[1]).get("refresh_token") if answer[0] == 200 else None
                        if answer[0] != 200:
                            count(f"refresh-{answer[0]}")
                    if answer[2]:
                        break
            except (OSError, ConnectionError, asyncio.IncompleteReadError):
                count("io-error")
            finally:
                writer.close()

    async def reporter():
        started = time.time()
        while time.time() < stop_at:
            await asyncio.sleep(min(report_every, max(0.1, stop_at - time.time())))
            window = {label: sorted(values) for label, values in latencies.items()}
            latencies.clear()
            every = sorted(v for values in window.values() for v in values)
            p50, p99 = percentile(every, 0.5), percentile(every, 0.99)
            rss = server.rss_mb()
            samples.append((time.time() - started, len(every), p50, p99, rss))
            per = "  ".join(f"{label} {percentile(v, 0.5):.1f}/{percentile(v, 0.99):.1f}" for label, v in sorted(window.items()))
            print(f"  t={time.time() - started:6.0f}s  n={len(every):7d}  p50={p50:6.1f} ms"
                  f"  p99={p99:6.1f} ms  rss={rss:6.1f} MB  {dict(sorted(statuses.items(), key=str))}\n"
                  f"           p50/p99 ms: {per}", flush=True)

    await asyncio.gather(reporter(), *(worker(n) for n in range(connections)))
    print("  whole run, p50/p99 ms per endpoint: " + "  ".join(
        f"{label} n={len(v)} {percentile(sorted(v), 0.5):.1f}/{percentile(sorted(v), 0.99):.1f}"
        for label, v in sorted(totals.items())), flush=True)
    return statuses, samples


def soak(args):
    server = Server()
    try:
        server.start()
        client = server.client()
        print(f"soak: {args.minutes} min, {args.connections} connections", flush=True)
        statuses, samples = asyncio.run(
            load(server, client, args.minutes * 60, args.connections,
                 report_every=5 if args.short else 30)
        )
        errors = {k: v for k, v in statuses.items() if isinstance(k, int) and k >= 500}
        if errors:
            fail(f"soak: 5xx answers {errors}")
        # The code flow and refresh rotations must have run and held.
        broken = {k: v for k, v in statuses.items() if isinstance(k, str) and k.startswith(("authorize-", "refresh-"))}
        if broken:
            fail(f"soak: code flow or refresh failed {broken}")
        total = sum(v for k, v in statuses.items() if isinstance(k, int))
        print(f"soak: {total} answers, statuses {statuses}")
        if len(samples) >= 4:
            half = samples[len(samples) // 2:]
            growth = half[-1][4] - half[0][4]
            print(f"soak: RSS over the last half {half[0][4]:.1f} -> {half[-1][4]:.1f} MB ({growth:+.1f})")
            if not args.short and growth > 20:
                fail(f"soak: RSS grew {growth:.1f} MB over the last half")
    finally:
        server.close()


# ---------------------------------------------------------------- kill -9


def kill9(args):
    """Revocations answered 200 before a kill -9 hold after the restart."""
    server = Server()
    try:
        server.start()
        client = server.client()
        for round_ in range(args.rounds):
            tokens = [token_for(server, client) for _ in range(60 if args.short else 400)]
            answered = []

            async def revoke_all():
                loop = asyncio.get_running_loop()

                def one(token):
                    status, _ = request("POST", server.base + "/oauth2/revoke", {"token": token}, client, timeout=5)
                    return status

                async def go(token):
                    try:
                        status = await loop.run_in_executor(None, one, token)
                    except OSError:
                        return
                    if status == 200:
                        answered.append(token)

                pending = [asyncio.ensure_future(go(t)) for t in tokens]
                # Kill in the middle of the writes: once a third is answered.
                deadline = time.time() + 30
                while len(answered) < len(tokens) // 3 and time.time() < deadline:
                    await asyncio.sleep(0.005)
                server.kill9()
                await asyncio.gather(*pending, return_exceptions=True)

            asyncio.run(revoke_all())
            server.start()
            lost = [t for t in answered if active(server, client, t)[1] is not False]
            print(f"kill9: round {round_ + 1}: kill -9 after {len(answered)} of {len(tokens)} revocations "
                  f"were answered 200; {len(lost)} of those lost after the restart")
            if lost:
                fail(f"kill9: {len(lost)} revocations answered 200 did not survive kill -9")
    finally:
        server.close()


# ---------------------------------------------------------------- partition


class Proxy:
    """A TCP proxy the suite controls: forward, stall (swallow traffic and
    hold sockets), cut (close everything), heal."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.port = free_port()
        self.mode = "forward"
        self.generation = 0
        self.held = []

    async def serve(self):
        self.server = await asyncio.start_server(self.accept, "127.0.0.1", self.port)

    async def accept(self, reader, writer):
        if self.mode != "forward":
            if self.mode == "cut":
                writer.close()
            else:
                self.held.append(writer)
            return
        born = self.generation
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def pipe(src, dst):
            try:
                while True:
                    data = await src.read(65536)
                    if not data:
                        break
                    while self.generation != born and self.mode == "stall":
                        await asyncio.sleep(3600)
                    if self.generation != born:
                        break
                    dst.write(data)
                    await dst.drain()
            except (OSError, ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def set(self, mode):
        self.mode = mode
        if mode != "forward":
            self.generation += 1


def partition(args):
    pg = os.environ.get("TESSERA_SUITE_POSTGRES")
    if not pg:
        print("partition: skipped (needs TESSERA_SUITE_POSTGRES); SQLite has no network path")
        return
    parsed = urllib.parse.urlparse(pg)

    async def scenario():
        proxy = Proxy(parsed.port or 5432)
        await proxy.serve()
        name = f"tessera_suite_part_{os.getpid()}"
        psql(pg, f"CREATE DATABASE {name}")
        url = f"postgres://{parsed.username}@127.0.0.1:{proxy.port}/{name}"
        loop = asyncio.get_running_loop()
        # Off the event loop: the proxy must keep forwarding while it migrates.
        server = await loop.run_in_executor(None, lambda: Server(database_url=url, extra_env={
            "TESSERA__DATABASE__CONNECT_TIMEOUT_SECS": "1",
            "TESSERA__DATABASE__QUERY_TIMEOUT_MS": "1000",
            "TESSERA__DATABASE__CACHE_TTL_MS": "0",
        }))
        server.pg_admin = (pg.rstrip("/"), name)
        try:
            await loop.run_in_executor(None, server.start)
            client = await loop.run_in_executor(None, server.client)
            token = await loop.run_in_executor(None, token_for, server, client)
            for mode in ("stall", "cut"):
                proxy.set(mode)
                started = time.time()
                answers = await asyncio.gather(*(
                    loop.run_in_executor(None, lambda: request(
                        "POST", server.base + "/oauth2/revoke", {"token": token}, client, timeout=30)[0])
                    for _ in range(20)
                ), return_exceptions=True)
                took = time.time() - started
                bad = [a for a in answers if a != 503]
                print(f"partition: {mode}: 20 revocations answered {sorted(set(map(str, answers)))} in {took:.1f} s")
                if bad:
                    fail(f"partition: {mode}: answers other than 503: {bad}")
                proxy.set("forward")
                healed = time.time()
                recovered = None
                while time.time() - healed < 30:
                    status, _ = await loop.run_in_executor(None, lambda: request(
                        "POST", server.base + "/oauth2/token",
                        {"grant_type": "client_credentials", "scope": "profile"}, client))
                    if status == 200:
                        recovered = time.time() - healed
                        break
                    await asyncio.sleep(0.1)
                print(f"partition: {mode}: service back {recovered if recovered is None else round(recovered, 2)} s after the path healed")
                if recovered is None or recovered > 5:
                    fail(f"partition: {mode}: no recovery within 5 s of healing")
        finally:
            await loop.run_in_executor(None, server.close)

    asyncio.run(scenario())


# ---------------------------------------------------------------- slow


def slow(args):
    server = Server(extra_env={"TESSERA__SERVER__BODY_TIMEOUT_SECS": "2"})
    try:
        server.start()
        client = server.client()
        count = 50 if args.short else 2000
        sockets = []
        for i in range(count):
            s = socket.create_connection(("127.0.0.1", server.port))
            kind = i % 3
            if kind == 0:
                s.sendall(b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n")  # slow headers
            elif kind == 1:
                s.sendall(b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\ngr")  # slow body
            sockets.append(s)  # kind 2: idle
        time.sleep(0.5)
        served = sum(1 for _ in range(20) if request(
            "POST", server.base + "/oauth2/token",
            {"grant_type": "client_credentials", "scope": "profile"}, client)[0] == 200)
        print(f"slow: {count} slow or idle connections open; good clients served {served}/20")
        if served != 20:
            fail("slow: good clients were not served while slow clients held connections")
        deadline = time.time() + 20
        open_ = list(sockets)
        while open_ and time.time() < deadline:
            still = []
            for s in open_:
                s.setblocking(False)
                try:
                    data = s.recv(4096)
                    if data == b"":
                        s.close()
                        continue
                    # An answer (408/400): wait for the close.
                    still.append(s)
                except BlockingIOError:
                    still.append(s)
                except OSError:
                    s.close()
            open_ = still
            time.sleep(0.2)
        print(f"slow: {len(open_)} of {count} connections still open after 20 s")
        if open_:
            fail(f"slow: {len(open_)} slow or idle connections were never closed")
        for s in open_:
            s.close()
    finally:
        server.close()


# ---------------------------------------------------------------- hostile


def hostile(args):
    server = Server()
    try:
        server.start()
        client = server.client()
        rng = random.Random(7)
        seconds = 5 if args.short else args.seconds
        stop_at = time.time() + seconds
        junk = ["%", "%zz", "%ff%fe", "\x00", "a" * 5000, "'; DROP TABLE grants;--", "<script>", "&&&&", "=", "\r\n"]
        paths = ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke", "/oauth2/register",
                 "/login", "/signup", "/oauth2/authorize", "/oauth2/userinfo", "/oauth2/logout"]
        counts, n = {}, 0
        while time.time() < stop_at:
            path = rng.choice(paths)
            body = "&".join(f"{rng.choice(junk)}={rng.choice(junk)}" for _ in range(rng.randrange(1, 8)))
            method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "MADEUP%d" % rng.randrange(1000)])
            try:
                with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
                    raw = (f"{method} {path}?{urllib.parse.quote(rng.choice(junk))} HTTP/1.1\r\nHost: x\r\n"
                           f"Content-Type: {rng.choice(['application/x-www-form-urlencoded', 'text/plain', rng.choice(junk)[:50]])}\r\n"
                           f"Content-Length: {len(body.encode())}\r\nConnection: close\r\n\r\n{body}")
                    s.sendall(raw.encode("utf-8", "surrogatepass"))
                    answer = s.recv(64)
                    status = int(answer.split()[1]) if answer.startswith(b"HTTP/1.1") else "none"
            except (OSError, ValueError, IndexError):
                status = "io"
            counts[status] = counts.get(status, 0) + 1
            n += 1
        five = {k: v for k, v in counts.items() if isinstance(k, int) and k >= 500}
        served = sum(1 for _ in range(10) if request(
            "POST", server.base + "/oauth2/token",
            {"grant_type": "client_credentials", "scope": "profile"}, client)[0] == 200)
        print(f"hostile: {n} requests in {seconds} s: {dict(sorted(counts.items(), key=str))}; good clients {served}/10")
        if five:
            fail(f"hostile: 5xx answers {five}")
        if served != 10:
            fail("hostile: good clients were not served")
        status, metrics = get(server.base + "/metrics")
        series = sum(1 for line in metrics.decode().splitlines() if line.startswith("tessera_http_requests_total"))
        print(f"hostile: /metrics holds {series} request series")
        if series > 300:
            fail(f"hostile: metrics grew to {series} series")
    finally:
        server.close()


SCENARIOS = {"soak": soak, "kill9": kill9, "partition": partition, "slow": slow, "hostile": hostile}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=[*SCENARIOS, "all"])
    parser.add_argument("--short", action="store_true", help="seconds, not minutes (CI)")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args()
    if args.short:
        args.minutes, args.connections, args.rounds = 0.25, 50, 1
    if not os.environ.get("TESSERA_SUITE_BIN"):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    for name in (SCENARIOS if args.scenario == "all" else [args.scenario]):
        print(f"== {name}", flush=True)
        SCENARIOS[name](args)
    if FAILURES:
        print(f"{len(FAILURES)} failed: " + "; ".join(FAILURES))
        sys.exit(1)
    print("fault suite: every promise held")


if __name__ == "__main__":
    main()
