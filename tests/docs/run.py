#!/usr/bin/env python3
"""The docs runner: runs every shell block of README.md and docs/*.md as written.

    python3 tests/docs/run.py              # every document
    python3 tests/docs/run.py developers   # documents whose name contains "developers"

What it does, per document, in order of its blocks:

* Every fenced block whose language is ``sh`` runs in bash (``set -euo
  pipefail``), in a fresh working directory under ``target/docs-runner/NAME/``
  (inside the repository, so ``cargo run`` finds the manifest; ``data/`` and the
  files a document writes land there). Shell variables carry from one block to
  the next, as they would in one terminal. ``tessera`` is on ``PATH`` (the debug
  build of this checkout, what ``cargo install --path .`` gives a reader).
* A block fails the document when it exits non-zero, when its output holds an
  OAuth error (``"error":``), or when it leaves a variable it assigned empty or
  ``null`` (the mark of a ``jq`` that read the wrong thing).
* Blocks in any other language (``text``, ``toml``, ``json``, ``rust``) are
  shown, not run: synopses and sample output use those.

Directives are HTML comments, invisible on GitHub, standing for what a reader
does by hand or for what the runner must know:

``<!-- docs-runner: skip REASON -->``        before a block: do not run it (REASON required)
``<!-- docs-runner: background -->``         before a block: it starts a server; run it in the
                                            background and wait for /health/ready
``<!-- docs-runner: serve -->``              start ``tessera serve`` (the reader's ``cargo run``)
``<!-- docs-runner: signup USER -->``        sign up USER on the real /signup page
``<!-- docs-runner: approve -->``            open the last URL the previous block printed, sign
                                            in as the signed-up user and press Allow on the real
                                            pages; the code the browser lands with replaces the
                                            placeholder ``paste-the-code-here`` in later blocks
``<!-- docs-runner: assert COMMAND -->``     a check the runner makes (bash, the document's
                                            variables): must exit 0
``<!-- docs-runner: reset COMMAND -->``      tidy the machine before a block (drop a database a
                                            previous run left)
``<!-- docs-runner: fresh -->``              forget the variables earlier blocks set (a new terminal,
                                            e.g. back on a development machine after production
                                            settings)
``<!-- docs-runner: continue DOC -->``       run this document in the state DOC left (its
                                            directory, variables and server)

A document runs against a server on 127.0.0.1:8080, the address the docs use;
the runner refuses to start when that port is taken.
"""

from __future__ import annotations

import html.parser
import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "target" / "docs-runner"
BASE = "http://127.0.0.1:8080"
PLACEHOLDER_CODE = "paste-the-code-here"
PASSWORD = "docs-runner passphrase 7"

FENCE = re.compile(r"^```(\S*)")
DIRECTIVE = re.compile(r"^<!--\s*docs-runner:\s*(\w[\w-]*)\s*(.*?)\s*-->\s*$")
SKIP_VARS = {"PWD", "OLDPWD", "SHLVL", "_", "BASH_EXECUTION_STRING"}


class Failure(Exception):
    pass


def parse(path: Path):
    """Yields ("block", lang, text, directives, line) and ("action", name, arg, line)."""
    lines = path.read_text().splitlines()
    pending: list[tuple[str, str]] = []
    items = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = DIRECTIVE.match(line.strip())
        if m:
            name, arg = m.group(1), m.group(2)
            if name in ("skip", "background"):
                pending.append((name, arg))
            else:
                items.append(("action", name, arg, i + 1))
            i += 1
            continue
        f = FENCE.match(line)
        if f:
            lang = f.group(1)
            start = i + 1
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            items.append(("block", lang, "\n".join(body) + "\n", pending, start))
            pending = []
            i += 1
            continue
        if line.strip() and pending:
            raise Failure(f"{path.name}:{i + 1}: a skip/background directive must come right before a block")
        i += 1
    return items


class Forms(html.parser.HTMLParser):
    """Every POST form of a page, with the fields a browser would send."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self.current: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post":
            self.current = {"action": a.get("action") or "", "fields": [], "buttons": [], "inputs": set()}
            self.forms.append(self.current)
        elif self.current is not None and tag == "input" and "disabled" not in a and a.get("name"):
            kind = (a.get("type") or "text").lower()
            self.current["inputs"].add(a["name"])
            if kind == "checkbox":
                if "checked" in a:
                    self.current["fields"].append((a["name"], a.get("value") or "on"))
            elif kind == "hidden":
                self.current["fields"].append((a["name"], a.get("value") or ""))
        elif self.current is not None and tag == "button" and a.get("name"):
            self.current["buttons"].append((a["name"], a.get("value") or ""))

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None

    def pick(self, extra: dict[str, str], button: str | None) -> dict | None:
        """The form with that button, or the one with inputs for every extra field."""
        for form in self.forms:
            if button is not None:
                if any(value == button for _, value in form["buttons"]):
                    return form
            elif all(name in form["inputs"] for name in extra):
                return form
        return None


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A person at a browser, over HTTP: cookies, forms, redirects within tessera."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def request(self, url, data=None):
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(url, data=body, headers={"Origin": BASE} if body else {})
        try:
            with self.opener.open(req, timeout=10) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode(errors="replace")

    def visit(self, url, until_outside=False):
        """GET url and follow redirects while they stay on tessera; returns (url, status, body)."""
        for _ in range(10):
            status, headers, body = self.request(url)
            if status in (301, 302, 303, 307) and headers.get("Location"):
                nxt = urllib.parse.urljoin(url, headers["Location"])
                if not nxt.startswith(BASE):
                    return nxt, status, body
                url = nxt
                continue
            return url, status, body
        raise Failure(f"too many redirects from {url}")

    def submit(self, url, body, extra: dict[str, str], button: str | None = None):
        forms = Forms()
        forms.feed(body)
        form = forms.pick(extra, button)
        if form is None:
            raise Failure(f"no form for {sorted(extra) or button} on {url}")
        fields = list(form["fields"]) + list(extra.items())
        if button:
            fields += [b for b in form["buttons"] if b[1] == button]
        status, headers, page = self.request(urllib.parse.urljoin(url, form["action"]), fields)
        if status in (301, 302, 303) and headers.get("Location"):
            nxt = urllib.parse.urljoin(url, headers["Location"])
            if not nxt.startswith(BASE):
                return nxt, status, page
            return self.visit(nxt)
        return url, status, page


def signup(user: str):
    b = Browser()
    url, status, body = b.visit(f"{BASE}/signup")
    if status != 200:
        raise Failure(f"/signup answered {status}")
    url, status, body = b.submit(
        url, body, {"username": user, "display_name": user.title(), "email": f"{user}@example.com",
                    "password": PASSWORD, "password_confirmation": PASSWORD})
    if status >= 400 or "/signup" in url:
        raise Failure(f"sign-up of {user} failed ({status} at {url})")


def approve(user: str, auth_url: str) -> str:
    """Signs in as USER and presses Allow; returns the code the redirect carries."""
    b = Browser()
    url, status, body = b.visit(auth_url)
    if "/login" in urllib.parse.urlparse(url).path:
        url, status, body = b.submit(url, body, {"username": user, "password": PASSWORD})
    if not url.startswith(BASE):
        dest = url
    else:
        if status != 200 or 'name="decision"' not in body:
            raise Failure(f"expected the consent page at {url}, got {status}")
        dest, status, body = b.submit(url, body, {}, button="allow")
    query = urllib.parse.parse_qs(urllib.parse.urlparse(dest).query)
    if "code" not in query:
        raise Failure(f"the browser landed on {dest} without a code")
    return query["code"][0]


def port_free() -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", 8080)) != 0


def wait_ready(proc: subprocess.Popen, log: Path, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise Failure(f"the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{BASE}/health/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise Failure(f"the server was not ready after {timeout} s:\n{log.read_text()[-3000:]}")


class Session:
    """One reader's terminal: a working directory, variables, a server."""

    def __init__(self, name: str, env: dict[str, str]):
        self.dir = WORK / name
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.state = self.dir / ".docs-runner-state.sh"
        self.state.write_text("")
        self.env = env
        self.servers: list[subprocess.Popen] = []
        self.user: str | None = None
        self.last_stdout = ""
        self.code: str | None = None

    def script(self, body: str, dump: bool) -> str:
        head = f"set -a\nsource {self.state}\nset +a\nset -euo pipefail\ncd {self.dir}\n"
        tail = f"\nexport -p > {self.state}.new\n" if dump else ""
        # Assignments made by the block are exported so the next block sees them.
        return head + "set -a\n" + body + tail

    def run(self, body: str, where: str, check_output=True):
        if self.code:
            body = body.replace(PLACEHOLDER_CODE, self.code)
        before = self.variables()
        proc = subprocess.run(["bash", "-c", self.script(body, True)], env=self.env, capture_output=True,
                              text=True, timeout=600)
        sys.stdout.write(indent(proc.stdout))
        if proc.returncode != 0:
            raise Failure(f"{where}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
        if check_output and re.search(r'"error"\s*:', proc.stdout):
            raise Failure(f"{where}: the output holds an OAuth error")
        new = Path(f"{self.state}.new")
        self.state.write_text("\n".join(
            line for line in new.read_text().splitlines()
            if not any(line.startswith(f"declare -x {v}=") or line == f"declare -x {v}" for v in SKIP_VARS)))
        after = self.variables()
        for name, value in after.items():
            if before.get(name) != value and value in ("", "null"):
                raise Failure(f"{where}: the block left ${name} {value or 'empty'}")
        self.last_stdout = proc.stdout

    def variables(self) -> dict[str, str]:
        proc = subprocess.run(["bash", "-c", f"set -a; source {self.state}; env -0"], env={},
                              capture_output=True, text=True)
        out = {}
        for item in proc.stdout.split("\0"):
            if "=" in item:
                k, v = item.split("=", 1)
                out[k] = v
        return out

    def check(self, command: str, where: str):
        proc = subprocess.run(["bash", "-c", self.script(command, False)], env=self.env,
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise Failure(f"{where}: check failed: {command}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")

    def background(self, body: str, where: str):
        if not port_free():
            raise Failure(f"{where}: 127.0.0.1:8080 is taken; stop what listens there")
        log = self.dir / f"server-{len(self.servers)}.log"
        proc = subprocess.Popen(["bash", "-c", self.script(body, False)],
                                env=self.env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.servers.append(proc)
        wait_ready(proc, log)

    def stop(self):
        for proc in self.servers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        self.servers = []


def indent(text: str) -> str:
    def short(line: str) -> str:
        return line if len(line) <= 160 else line[:150] + f"… ({len(line)} chars)"

    return "".join(f"    | {short(line)}\n" for line in text.splitlines()[-15:])


def doc_name(path: Path) -> str:
    return path.stem if path.parent != ROOT else "README"


def session_for(path: Path, sessions: dict[str, Session], env: dict[str, str]) -> Session:
    """A fresh terminal, or the one of the document this one continues."""
    for item in parse(path):
        if item[0] == "action" and item[1] == "continue":
            name = item[2].removesuffix(".md")
            if name not in sessions:
                raise Failure(f"{path.name} continues {name}, which did not run")
            return sessions[name]
    return Session(doc_name(path), env)


def run_doc(path: Path, session: Session) -> None:
    items = parse(path)
    for item in items:
        where = f"{path.relative_to(ROOT)}:{item[-1]}"
        if item[0] == "block":
            _, lang, text, directives, _ = item
            if lang not in ("sh", "bash"):
                continue
            kinds = dict(directives)
            if "skip" in kinds:
                if not kinds["skip"]:
                    raise Failure(f"{where}: skip needs a reason")
                print(f"  skip  {where}: {kinds['skip']}")
                continue
            print(f"  run   {where}")
            if "background" in kinds:
                session.background(text, where)
            else:
                session.run(text, where)
        else:
            _, action, arg, _ = item
            if action == "continue":
                continue
            print(f"  {action:5} {where} {arg}")
            if action == "serve":
                session.background("tessera serve", where)
            elif action == "signup":
                signup(arg)
                session.user = arg
            elif action == "approve":
                urls = re.findall(r"https?://\S+", session.last_stdout)
                if not urls or session.user is None:
                    raise Failure(f"{where}: approve needs a printed URL and a signed-up user")
                session.code = approve(session.user, urls[-1])
            elif action == "assert":
                session.check(arg, where)
            elif action == "reset":
                session.check(arg, where)
            elif action == "fresh":
                session.state.write_text("")
            else:
                raise Failure(f"{where}: unknown directive {action}")


def main() -> int:
    docs = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
    wanted = sys.argv[1:]
    if wanted:
        docs = [d for d in docs if any(w in d.name for w in wanted)]
    binary = ROOT / "target" / "debug" / "tessera"
    subprocess.run(["cargo", "build", "--quiet", "--bin", "tessera"], cwd=ROOT, check=True)
    bindir = WORK / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    link = bindir / "tessera"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(binary)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA")}
    env["PATH"] = f"{bindir}:{env['PATH']}"
    env.pop("CI", None)
    if not port_free():
        print("127.0.0.1:8080 is taken; the docs use that address. Stop what listens there.", file=sys.stderr)
        return 1
    sessions: dict[str, Session] = {}
    # Documents that continue another run after it.
    order = sorted(docs, key=lambda d: any(i[0] == "action" and i[1] == "continue" for i in parse(d)))
    failed = []
    try:
        for doc in order:
            print(f"== {doc.relative_to(ROOT)}")
            session = None
            try:
                session = session_for(doc, sessions, env)
                sessions[doc_name(doc)] = session
                run_doc(doc, session)
            except Failure as e:
                print(f"FAIL {e}", file=sys.stderr)
                failed.append(doc.name)
            finally:
                # A session a later document continues keeps its server.
                later = order[order.index(doc) + 1:]
                continued = any(
                    i[0] == "action" and i[1] == "continue" and i[2].removesuffix(".md") == doc_name(doc)
                    for d in later for i in parse(d))
                if session is not None and not continued:
                    session.stop()
    finally:
        for s in sessions.values():
            s.stop()
    if failed:
        print(f"docs runner: {len(failed)} document(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"docs runner: {len(order)} documents ran as written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
