"""The dashboard in headless Chromium against the real stack (processes behind nginx):
sign in by link, live job progress and log tail (also across a hidden tab), the Jobs page
against the API, bulk retry, retry / cancel all matching, pause / resume, audit, schedules,
analytics, an export from the Jobs filters (live progress, the downloaded file against the
API), and what a viewer does not see.
Screenshots of each page at 1,280 and 390 px go to var/screenshots (gitignored)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from jobdeck.settings import Settings
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.support.api import SECRET, auth, job_row, seed, token
from tests.support.dashboard import (
    CHROMIUM,
    NARROW,
    WIDE,
    Stack,
    Tab,
    launch_chromium,
    open_tab,
    start_stack,
)
from tests.support.ingress import nginx_binary
from tests.support.processes import wait_for

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
# Rows of the exported filter: ~0.7 MB of NDJSON, which the exporter reads in blocks of at
# most 256 KiB (a progress event at most every 50 ms, the first after the first block).
EXPORT_ROWS = 2000

if not (Path(CHROMIUM).exists() and nginx_binary()):
    reason = "chromium and nginx are needed (make test installs them: ensure-browser.sh)"
    if os.environ.get("CI"):
        raise RuntimeError(reason)
    pytest.skip(reason, allow_module_level=True)


class Api:
    def __init__(self, stack: Stack, http: aiohttp.ClientSession) -> None:
        self.base = stack.api.url + "/api/v1"
        self.http = http

    async def call(self, method: str, path: str, body: Any = None, role: str = "admin") -> Any:
        async with self.http.request(method, self.base + path, json=body, headers=auth(role)) as r:
            payload = await r.json()
            assert r.status < 300, payload
            return payload

    async def enqueue(self, queue: str, name: str, **fields: Any) -> str:
        body = {"queue": queue, "name": name, **fields}
        return str((await self.call("POST", "/jobs", body))["id"])

    async def job(self, job_id: str) -> dict[str, Any] | None:
        async with self.http.get(f"{self.base}/jobs/{job_id}", headers=auth()) as r:
            return await r.json() if r.status == 200 else None

    async def wait(self, job_id: str, status: str, attempts: int = 0) -> None:
        async def reached() -> bool:
            job = await self.job(job_id)
            return job is not None and job["status"] == status and job["attempts"] >= attempts

        await wait_for(reached, 30, what=f"job {job_id} {status} after {attempts} attempt(s)")


@pytest.fixture
async def stack(settings: Settings, tmp_path: Path) -> AsyncIterator[Stack]:
    running = await start_stack(
        settings,
        tmp_path,
        SECRET,
        [
            "--tasks",
            "jobdeck_worker.demo",
            "--queue",
            "alpha:4",
            "--queue",
            "beta:4",
            "--grace",
            "1",
        ],
        {
            "JOBDECK_GATEWAY_STATS_INTERVAL_S": "1",
            "JOBDECK_EXPORTER_PROGRESS_INTERVAL_MS": "50",
            # The start request answers at once (202), so the page follows the export by its
            # progress events instead of sometimes getting the finished file in the answer.
            "JOBDECK_API_EXPORT_WAIT_S": "0",
        },
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as http:
        yield Api(stack, http)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        yield chromium
        await chromium.close()


async def shoot(page: Page, name: str) -> None:
    """This page at both widths, for the README and for people reviewing a change."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, viewport in (("1280", WIDE), ("390", NARROW)):
        await page.set_viewport_size(viewport)
        await page.screenshot(path=SHOTS / f"{name}-{label}.png", full_page=label == "1280")
    await page.set_viewport_size(WIDE)


async def set_hidden(page: Page, hidden: bool) -> None:
    """What the browser does when the tab goes to the background, or comes back."""
    await page.evaluate(
        """hidden => {
            Object.defineProperty(document, 'hidden', {value: hidden, configurable: true});
            document.dispatchEvent(new Event('visibilitychange'));
        }""",
        hidden,
    )


# Records every value the export rows' progress bars take (`data-value`, unrounded), old
# ones included, so a test can tell that a bar moved before the export ended however fast
# it ran: the exporter's first progress event comes after its first chunk of rows.
WATCH_EXPORT_PROGRESS = """() => {
    window.exportProgressSeen = [];
    const seen = (value) => { if (value !== null) window.exportProgressSeen.push(+value); };
    const bars = (node) => node.querySelectorAll ? node.querySelectorAll('[role=progressbar]') : [];
    new MutationObserver((records) => records.forEach((r) => {
        if (r.type === 'attributes') seen(r.oldValue);
        r.addedNodes.forEach((n) => bars(n).forEach((bar) => seen(bar.dataset.value)));
        r.removedNodes.forEach((n) => bars(n).forEach((bar) => seen(bar.dataset.value)));
    })).observe(document.querySelector('table.exports tbody'), {
        subtree: true, childList: true, attributes: true, attributeOldValue: true,
        attributeFilter: ['data-value'],
    });
}"""


async def export_from_the_jobs_page(page: Page, api: Api, pg: asyncpg.Pool, url: str) -> None:
    """Filter the Jobs page, export what it lists, watch the export's progress move, click
    the download link: the file holds the API search's rows for the same filters, in order."""
    now = datetime.now(UTC)
    archived = [
        job_row(queue="archive", created_at=now - timedelta(seconds=i)) for i in range(EXPORT_ROWS)
    ]
    await seed(pg, [*archived, job_row(queue="archive", status="failed", created_at=now)])
    await page.goto(f"{url}/#/jobs")
    await page.get_by_label("completed", exact=True).check()
    await page.get_by_label("Queues").select_option("archive")
    await page.get_by_role("button", name="Apply").click()
    await expect(page.locator(".summary")).to_contain_text(f"{EXPORT_ROWS:,} matching")
    await page.get_by_role("link", name="Export these jobs…").click()
    await expect(page.locator("form[aria-label='New export']")).to_contain_text(
        "status: completed · queues: archive"
    )
    await page.evaluate(WATCH_EXPORT_PROGRESS)
    await page.get_by_label("Format").select_option("ndjson")
    await page.get_by_role("button", name="Start export").click()
    row = page.locator("tr[data-export]").first
    await expect(row).to_have_attribute("data-status", "done", timeout=60_000)
    seen = await page.evaluate("() => window.exportProgressSeen")
    assert any(0 < v < 100 for v in seen), seen  # the bar moved live, before the end
    await expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    await expect(row.locator("td.rows")).to_have_text(f"{EXPORT_ROWS:,} / {EXPORT_ROWS:,}")
    await shoot(page, "exports")
    async with page.expect_download() as download_info:
        await row.get_by_role("link", name="Download").click()
    download = await download_info.value
    path = await download.path()
    exported = [json.loads(line)["id"] for line in path.read_text().splitlines()]

    searched: list[str] = []
    query = "/jobs/search?status[]=completed&queues[]=archive&limit=200"
    cursor = ""
    while True:
        result = await api.call("GET", query + cursor)
        searched += [j["id"] for j in result["items"]]
        if not result.get("nextCursor"):
            break
        cursor = f"&cursor={result['nextCursor']}"
    assert len(exported) == EXPORT_ROWS
    assert exported == searched


@pytest.mark.timeout(240)
async def test_operator_watches_jobs_live_and_acts_on_them(
    stack: Stack, api: Api, browser: Browser, pg: asyncpg.Pool
) -> None:
    tab: Tab = await open_tab(browser, stack.url, token("admin", sub="ada"))
    page = tab.page

    # Signed in by the link; the token left the URL; the overview lists both queues live.
    await expect(page.locator("#who")).to_have_text("ada · admin")
    assert "token=" not in page.url
    await expect(page.locator("#live")).to_have_text("live")
    await expect(page.locator("tr[data-queue=alpha]")).to_be_visible()
    await expect(page.locator("tr[data-queue=beta]")).to_be_visible()
    await expect(page.locator(".stats .stat").first).to_be_visible()
    await expect(page.locator("table.workers")).to_contain_text("alpha:4")

    # Job detail: a job held in a paused queue is shown waiting; once the queue resumes,
    # its progress moves live, then the log tail and the end state arrive.
    await api.call("POST", "/jobs/queues/alpha/pause")
    report = await api.enqueue("alpha", "generate-report", data={"sections": 8, "section_s": 0.5})
    await api.wait(report, "waiting")
    await page.goto(f"{stack.url}/#/job/{report}")
    await expect(page.locator(".jobhead .badge")).to_have_text("waiting")
    await api.call("POST", "/jobs/queues/alpha/resume")
    bar = page.get_by_role("progressbar", name="job progress")
    await expect(page.locator(".jobhead .badge")).to_have_text("active", timeout=15_000)
    await page.wait_for_function(
        "() => { const v = +document.querySelector('[role=progressbar]')"
        ".getAttribute('aria-valuenow'); return v > 0 && v < 100; }"
    )
    # The tab goes to the background: updates stop; coming back replays what was missed.
    await set_hidden(page, True)
    await expect(page.locator("#live")).to_have_text("paused")
    await api.wait(report, "completed")
    await set_hidden(page, False)
    await expect(page.locator("#live")).to_have_text("live")
    await expect(bar).to_have_attribute("aria-valuenow", "100")
    await expect(page.locator(".jobhead .badge")).to_have_text("completed")
    await expect(page.locator(".logs li")).to_have_count(8)
    await expect(page.locator(".logs li").last).to_contain_text("section 8/8 rendered")
    await shoot(page, "job")

    # Jobs page: the filters give the API's own answer, row for row.
    failing = [await api.enqueue("beta", "fail", maxAttempts=1) for _ in range(3)]
    done = await api.enqueue("beta", "noop")
    for job_id in failing:
        await api.wait(job_id, "failed")
    await api.wait(done, "completed")
    await page.goto(f"{stack.url}/#/jobs")
    await page.get_by_label("failed", exact=True).check()
    await page.get_by_label("Queues").select_option("beta")
    await page.get_by_role("button", name="Apply").click()
    await expect(page).to_have_url(f"{stack.url}/#/jobs?status=failed&queues=beta")
    expected = await api.call("GET", "/jobs/search?status[]=failed&queues[]=beta&limit=50")
    rows = page.locator("tbody tr[data-job]")
    await expect(rows).to_have_count(len(expected["items"]))
    assert [await r.get_attribute("data-job") for r in await rows.all()] == [
        j["id"] for j in expected["items"]
    ]
    assert {j["id"] for j in expected["items"]} == set(failing)
    await shoot(page, "jobs")

    # Bulk retry: select all, confirm, read the per-job results, see them run again.
    await page.get_by_label("select every row on this page").check()
    await page.get_by_role("button", name="Retry selected (3)").click()
    await page.locator("#dialog").get_by_role("button", name="Retry").click()
    await expect(page.locator("#dialog")).to_contain_text("retried: 3")
    await page.locator("#dialog").get_by_role("button", name="Close").click()
    for job_id in failing:
        await api.wait(job_id, "failed", attempts=2)

    # Pause alpha from the overview: its worker takes nothing; resume and it runs.
    await page.goto(f"{stack.url}/#/overview")
    await page.get_by_role("button", name="Pause alpha").click()
    await expect(page.get_by_role("button", name="Resume alpha")).to_be_visible()
    await expect(page.locator("tr[data-queue=alpha] .state")).to_have_text("paused")
    held = await api.enqueue("alpha", "noop")
    passed = await api.enqueue("beta", "noop")
    await api.wait(passed, "completed")
    assert (await api.job(held) or {}).get("status") == "waiting"
    # The throughput chart's time axis reads as times of day (e.g. 14:05:30), not ":50.000".
    await expect(page.locator(".chart")).to_have_attribute("data-points", re.compile(r"[3-9]|\d\d"))
    labels = await page.evaluate(
        "async () => (await import('/js/chart.js')).timeLabels([1764513930, 1764513932], 2)"
    )
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", label) for label in labels), labels
    await shoot(page, "overview")
    await page.get_by_role("button", name="Resume alpha").click()
    await api.wait(held, "completed")

    # The audit log shows who did it.
    await page.goto(f"{stack.url}/#/audit")
    await expect(page.locator("table.audit")).to_contain_text("jobs.bulk_retry")
    await expect(page.locator("table.audit")).to_contain_text("queues.pause")
    await shoot(page, "audit")

    # Analytics: every view answers from the rollups; the top error's "Retry these" counts
    # its jobs first (dry run), then retries them.
    await page.goto(f"{stack.url}/#/analytics?view=trends&range=1h")
    await expect(page.locator("table.trends")).to_contain_text("beta")
    await shoot(page, "analytics-trends")
    await page.goto(f"{stack.url}/#/analytics?view=performance&range=1h")
    await expect(page.locator("table.performance").first).to_contain_text("beta")
    await shoot(page, "analytics-performance")
    await page.goto(f"{stack.url}/#/analytics?view=resources&range=1h")
    await expect(page.get_by_role("heading", name="Queues")).to_be_visible()
    await shoot(page, "analytics-resources")
    await page.goto(f"{stack.url}/#/analytics?view=failures&range=1h")
    top_error = page.locator("table.fingerprints tbody tr", has_text="this task always fails")
    await expect(top_error).to_be_visible()
    await shoot(page, "analytics-failures")
    await top_error.get_by_role("button", name="Retry these").click()
    await expect(page.locator("#dialog-title")).to_have_text("Retry 3 failed jobs?")
    await page.locator("#dialog").get_by_role("button", name="Retry").click()
    await expect(page.locator("#dialog")).to_contain_text("retried: 3")
    await page.locator("#dialog").get_by_role("button", name="Close").click()
    for job_id in failing:
        await api.wait(job_id, "failed", attempts=3)

    # "All N matching this filter": the Jobs page's filter through the API's filter form.
    await page.goto(f"{stack.url}/#/jobs?status=failed&queues=beta")
    await page.get_by_role("button", name="Retry all 3 matching").click()
    await expect(page.locator("#dialog-title")).to_have_text(
        "Retry all 3 failed jobs matching this filter?"
    )
    await page.locator("#dialog").get_by_role("button", name="Retry all").click()
    await expect(page.locator("#dialog")).to_contain_text("retried: 3")
    await page.locator("#dialog").get_by_role("button", name="Close").click()
    for job_id in failing:
        await api.wait(job_id, "failed", attempts=4)

    # "Cancel all N matching": the waiting jobs of a paused queue, through the same form.
    await api.call("POST", "/jobs/queues/alpha/pause")
    to_cancel = [await api.enqueue("alpha", "noop") for _ in range(2)]
    for job_id in to_cancel:
        await api.wait(job_id, "waiting")
    await page.goto(f"{stack.url}/#/jobs?status=waiting&queues=alpha")
    await expect(page.get_by_role("button", name="Retry all", exact=False)).to_be_hidden()
    await page.get_by_role("button", name="Cancel all 2 matching").click()
    await expect(page.locator("#dialog-title")).to_have_text(
        "Cancel all 2 jobs matching this filter?"
    )
    await page.locator("#dialog").get_by_role("button", name="Cancel all").click()
    await expect(page.locator("#dialog")).to_contain_text("cancelled: 2")
    await page.locator("#dialog").get_by_role("button", name="Close").click()
    for job_id in to_cancel:
        await api.wait(job_id, "cancelled")
    await api.call("POST", "/jobs/queues/alpha/resume")

    # A job that starts matching the filter while the page is open is announced.
    await page.goto(f"{stack.url}/#/jobs?status=failed&queues=alpha")
    await expect(page.locator(".summary")).to_contain_text("0 matching")
    late = await api.enqueue("alpha", "fail", maxAttempts=1)
    await page.get_by_role("button", name="1 new job — refresh").click()
    await expect(page.locator("tbody tr[data-job]")).to_have_attribute("data-job", late)

    # Schedules: a template, then a schedule made in the form with its live preview; it
    # fires every second (a 6-field cron) and its runs show up; then disabled, and run now.
    await api.call("POST", "/jobs/templates", {"name": "ping", "queue": "beta", "jobName": "noop"})
    await page.goto(f"{stack.url}/#/schedules")
    await page.get_by_role("button", name="New schedule").click()
    form = page.get_by_role("form", name="New schedule")
    await form.get_by_label("Name").fill("every second")
    await form.get_by_label("Cron").fill("61 * * * *")
    await expect(page.locator("#cron-preview")).to_contain_text("cronExpression")
    await form.get_by_label("Cron").fill("* * * * * *")
    await form.get_by_label("Time zone").fill("Europe/Berlin")
    await expect(page.locator("#cron-preview li")).to_have_count(5)
    await expect(page.locator("#cron-preview")).to_contain_text("(Europe/Berlin)")
    await shoot(page, "schedules-form")
    await page.get_by_role("button", name="Create schedule").click()
    row = page.locator("tr[data-schedule='every second']")
    await expect(row).to_contain_text("enabled")
    await row.get_by_role("button", name="Runs of every second").click()

    async def fired() -> bool:
        await page.get_by_role("button", name="Refresh").click()
        return await page.locator(".runs-table tbody tr", has_text="enqueued").count() > 0

    await wait_for(fired, 30, interval=0.5, what="a run of the schedule in its history")
    # The counters are as fresh as the runs they count (they were the list's, stale).
    await expect(page.locator(".runs-summary")).not_to_contain_text("fired 0 ·")
    await row.get_by_role("button", name="Disable every second").click()
    await expect(page.locator("tr[data-schedule='every second']")).to_contain_text("disabled")
    await page.get_by_role("button", name="Run every second now").click()
    await expect(page.locator("main")).to_contain_text("Queued job")
    await shoot(page, "schedules")

    await export_from_the_jobs_page(page, api, pg, stack.url)
    # The browser logs the 422 of the bad cron typed above as a failed resource; nothing else.
    assert [e for e in tab.errors if "status of 422" not in e] == []


@pytest.mark.timeout(120)
async def test_viewer_sees_no_actions_and_only_its_queues(
    stack: Stack, api: Api, browser: Browser
) -> None:
    failed = await api.enqueue("alpha", "fail", maxAttempts=1)
    other = await api.enqueue("beta", "noop")
    await api.wait(failed, "failed")
    await api.wait(other, "completed")
    tab = await open_tab(browser, stack.url, token("viewer", ["alpha"], sub="vic"), NARROW)
    page = tab.page

    await expect(page.locator("tr[data-queue=alpha]")).to_be_visible()
    await expect(page.locator("tr[data-queue=alpha] button")).to_have_count(0)
    await expect(page.locator("tr[data-queue=beta]")).to_have_count(0)
    await expect(page.locator("#nav")).not_to_contain_text("Audit")

    await page.goto(f"{stack.url}/#/jobs")
    await expect(page.locator("tbody tr[data-job]")).to_have_count(1)
    await expect(page.locator("tbody tr[data-job]")).to_have_attribute("data-job", failed)
    await expect(page.locator("main input[type=checkbox][aria-label^=select]")).to_have_count(0)
    await expect(page.get_by_role("toolbar")).to_have_count(0)

    await page.goto(f"{stack.url}/#/job/{failed}")
    await expect(page.locator(".jobhead .badge")).to_have_text("failed")
    await expect(page.locator("main .toolbar button")).to_have_count(0)
    await expect(page.locator(".card.error")).to_contain_text("this task always fails")
    await expect(page.locator(".timeline .attempt")).to_contain_text("RuntimeError")
    await shoot(page, "signin-viewer-job")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("Paste an access token")).to_be_visible()
    await shoot(page, "signin")
    assert tab.errors == []
