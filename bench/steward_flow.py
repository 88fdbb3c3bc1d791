"""Steward throughput: a scripted steward decides candidates by keyboard in headless Chromium.

    python bench/steward_flow.py [--customers 100000] [--candidates 10000] [--decisions 100]
                                 [--database-url postgres://postgres@127.0.0.1:5432/keystone_flow_bench]
                                 [--keep] [--flow-only] [--screenshots DIR]

What it does, in order (only ever 127.0.0.1; every phase bounded; stops by itself):

1. drops and recreates the bench database (a name containing "bench", on 127.0.0.1 or
   localhost only) and migrates it; loads --customers customers over four source systems,
   contracts, a showcase customer and --candidates open match candidates exactly as
   `bench/steward_pages.py` does (its `load`); --flow-only reuses a database an earlier
   --keep run left;
2. starts Django's server on a free local port (`runserver --insecure --noreload`: one
   threaded process that also serves the static files) and waits for /healthz;
3. signs a steward in with Debian's /usr/bin/chromium (Playwright, headless) and opens the
   first candidate through "Start reviewing"; measures the page weight — every byte of the
   first candidate page with a cold cache (HTML, CSS, JS) and of a later one;
4. decides --decisions candidates by keyboard: `m` (merge) when the candidate's probability
   is 0.8 or more, else `n` (not a match); for each, the time from the keypress to the next
   candidate rendered (its page loaded, with the decision form) — the POST, the redirect to
   "next" (ranking the open queue and claiming the top candidate) and the candidate page;
5. checks in the database that the steward made those decisions, prints median, p95 and
   the slowest in milliseconds and the page weight, stops the server and drops the database
   unless --keep.

Target: median ≤ 300 ms and p95 ≤ 600 ms at 100,000 golden records (run it on a quiet
machine; a small run — `--customers 5000 --candidates 200 --decisions 20` — checks it works).
Screenshots only with --screenshots DIR (the first and the last candidate).
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import steward_pages
from benchdb import bench_target, maintenance

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/keystone_flow_bench"
CHROMIUM = "/usr/bin/chromium"
STEWARD = "bench-flow-steward"
SERVER_START_SECONDS = 60
NAVIGATION_MS = 30_000
say = steward_pages.say


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=100)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument(
        "--flow-only",
        action="store_true",
        help="decide on a database kept by an earlier --keep run (no load; implies --keep)",
    )
    parser.add_argument("--screenshots", type=Path, help="save the first and last candidate")
    args = parser.parse_args()
    args.keep = args.keep or args.flow_only
    if not 5_000 <= args.customers <= 300_000:
        parser.error("--customers 5,000-300,000")
    if not 100 <= args.candidates <= args.customers // 8:
        parser.error("--candidates 100 to customers/8")
    if not 1 <= args.decisions <= min(500, args.candidates // 2):
        parser.error("--decisions 1 to min(500, candidates/2)")
    if not os.path.exists(CHROMIUM):
        parser.error(f"needs Debian's chromium at {CHROMIUM}")
    return args


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def steward_password() -> str:
    """A steward who may decide, with a fresh password (the browser signs in as a person)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from stewardship.roles import setup_roles

    setup_roles()
    password = secrets.token_urlsafe(16)
    user, _ = get_user_model().objects.get_or_create(username=STEWARD, defaults={"is_staff": True})
    user.is_staff = True
    user.set_password(password)
    user.save()
    user.groups.add(Group.objects.get(name="steward"))
    return password


def start_server(database_url: str, port: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)  # tasks eager: no worker in this bench
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "runserver",
            "--insecure",
            "--noreload",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped: {server.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"the server did not answer within {SERVER_START_SECONDS} s")


class Weight:
    """What page loads fetched since the last `take`: bytes of 200 responses (Content-Length,
    else the body read; nothing for a 304 or a redirect), of which the HTML documents, and
    the number of responses."""

    def __init__(self, page):
        self.bytes = self.html = self.requests = 0
        page.on("response", self._count)

    def _count(self, response) -> None:
        self.requests += 1
        if response.status != 200:
            return
        length = response.header_value("content-length")
        size = int(length) if length is not None else self._body_size(response)
        self.bytes += size
        if response.request.resource_type == "document":
            self.html += size

    @staticmethod
    def _body_size(response) -> int:
        try:
            return len(response.body())
        except Exception:  # a body the browser no longer holds
            return 0

    def take(self) -> tuple[int, int, int]:
        taken = (self.bytes, self.html, self.requests)
        self.bytes = self.html = self.requests = 0
        return taken


def candidate_id(url: str) -> int | None:
    if "/steward/candidates/" not in url:
        return None
    return int(url.split("/steward/candidates/")[1].split("/")[0])


def decide_by_keyboard(base: str, password: str, args) -> dict:
    """Sign in, open the first candidate, decide `args.decisions` of them by keyboard."""
    from playwright.sync_api import sync_playwright

    timings, weights, seen = [], {}, set()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = chromium.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(NAVIGATION_MS)
            page.goto(f"{base}/admin/login/?next=/steward/queue/")
            page.fill("#id_username", STEWARD)
            page.fill("#id_password", password)
            with page.expect_navigation():
                page.click("input[type=submit]")
            weight = Weight(page)
            with page.expect_navigation(wait_until="load"):
                page.click("#start-review")
            page.wait_for_selector("#decision-form")
            weights["first candidate, cold cache"] = weight.take()
            if args.screenshots:
                args.screenshots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.screenshots / "flow-first.png"), full_page=True)
            for n in range(args.decisions):
                current = candidate_id(page.url)
                if current is None:
                    raise SystemExit(f"decision {n}: not on a candidate page ({page.url})")
                seen.add(current)
                label = page.locator(".ks-head .ks-pill").nth(1).inner_text()
                probability = float(label.rsplit(" ", 1)[1])
                key = "m" if probability >= 0.8 else "n"
                started = time.perf_counter()
                with page.expect_navigation(wait_until="load"):
                    page.keyboard.press(key)
                page.wait_for_selector("#decision-form")
                timings.append((time.perf_counter() - started) * 1000)
                if n == 0:
                    weights["next candidate, warm cache"] = weight.take()
                if candidate_id(page.url) in seen:
                    raise SystemExit(f"decision {n}: the same candidate opened again")
            if args.screenshots:
                page.screenshot(path=str(args.screenshots / "flow-last.png"), full_page=True)
        finally:
            chromium.close()
    return {"timings": timings, "weights": weights, "decided": len(seen)}


def report(result: dict, facts: dict) -> None:
    times = sorted(result["timings"])
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print()
    print(f"Steward flow — {facts['when']} — {facts['machine']}")
    print(f"data: {facts['data']}")
    print(f"load average before: {facts['uptime_before']}   after: {facts['uptime_after']}")
    print()
    print(f"decisions by keyboard:             {len(times)}")
    print(f"keypress -> next candidate, median: {statistics.median(times):8.1f} ms  (target ≤ 300)")
    print(f"keypress -> next candidate, p95:    {p95:8.1f} ms  (target ≤ 600)")
    print(f"keypress -> next candidate, slowest:{times[-1]:8.1f} ms")
    for label, (size, html, requests) in result["weights"].items():
        print(
            f"page weight, {label}: {size / 1024:.1f} KB ({html / 1024:.1f} KB HTML, the rest "
            f"CSS and JS the dev server sends uncached), {requests} responses"
        )


def main() -> None:
    args = parse_args()
    target = bench_target(args.database_url)
    if not args.flow_only:
        say(f"recreating database {target['name']} on {target['host']}")
        maintenance(target, "DROP DATABASE IF EXISTS {} WITH (FORCE)")
        maintenance(target, "CREATE DATABASE {}")
    server = None
    try:
        steward_pages.setup_django(args.database_url)
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        say("migrated")
        from matching.models import MatchCandidate, MatchDecision
        from mdm.models import GoldenRecord

        if not args.flow_only:
            steward_pages.load(
                SimpleNamespace(customers=args.customers, candidates=args.candidates)
            )
        password = steward_password()
        decided_before = MatchDecision.objects.filter(actor=f"user:{STEWARD}").count()
        facts = {
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{os.uname().machine}, {os.cpu_count()} CPUs",
            "data": f"{GoldenRecord.objects.filter(status='active').count():,} active golden "
            f"records, {MatchCandidate.objects.filter(status='open').count():,} open candidates",
            "uptime_before": steward_pages.load_average(),
        }
        connections.close_all()
        port = free_port()
        server = start_server(args.database_url, port)
        say(f"server on 127.0.0.1:{port}; deciding {args.decisions} candidates")
        result = decide_by_keyboard(f"http://127.0.0.1:{port}", password, args)
        facts["uptime_after"] = steward_pages.load_average()
        made = MatchDecision.objects.filter(actor=f"user:{STEWARD}").count() - decided_before
        if made != args.decisions:
            raise SystemExit(f"the database holds {made} new decisions, not {args.decisions}")
        report(result, facts)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        if args.keep:
            say(f"kept database {target['name']}")
        else:
            maintenance(target, "DROP DATABASE IF EXISTS {} WITH (FORCE)")
            say(f"dropped database {target['name']}")


if __name__ == "__main__":
    main()
