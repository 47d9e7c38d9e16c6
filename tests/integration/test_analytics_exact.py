"""Analytics endpoints against a direct SQL aggregation over ``jobs`` on the same data.

The recorder consumes every event of a few hundred job histories, a third of them twice,
in a random order and in small batches; then operators retry some failed jobs (moving
them from ``failed`` to their new outcome). Every count and rate the endpoints report must
equal the aggregation over the resulting rows, and every percentile must be within the
histogram's stated error.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient
from jobdeck.events import now_ms
from jobdeck.histogram import RELATIVE_ERROR
from jobdeck.streams import EventStream
from jobdeck_recorder.fingerprint import fingerprint
from redis.asyncio import Redis

from tests.integration.test_recorder_consumer import FAST, running, wait_drained
from tests.support.api import auth
from tests.support.histories import OUTCOMES, Job, history, manual_retry, shuffled_with_duplicates

HOUR = 3_600_000
QUEUES = ("alpha", "beta", "gamma")
NAMES = ("resize", "parse", "notify")
WIDTHS = {"hour": timedelta(hours=1), "15min": timedelta(minutes=15), "day": timedelta(days=1)}

DIRECT = """
SELECT queue, name,
       count(*) AS finished,
       count(*) FILTER (WHERE status = 'completed') AS completed,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
       count(*) FILTER (WHERE attempts > 1) AS retried,
       avg(duration_ms)::float8 AS d_avg, min(duration_ms) AS d_min, max(duration_ms) AS d_max,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) AS d_p50,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS d_p95,
       percentile_disc(0.99) WITHIN GROUP (ORDER BY duration_ms) AS d_p99,
       avg(w.wait)::float8 AS w_avg,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY w.wait) AS w_p95
FROM jobs,
     LATERAL (SELECT CASE WHEN started_at IS NOT NULL THEN greatest(
         (extract(epoch FROM started_at) * 1000)::bigint
         - (extract(epoch FROM greatest(created_at, coalesce(run_at, created_at))) * 1000)::bigint,
         0) END AS wait) AS w
WHERE status IN ('completed', 'failed', 'cancelled')
  AND finished_at >= $1 AND finished_at < $2
GROUP BY GROUPING SETS ((queue, name), (queue), ())
"""

DIRECT_BUCKETS = """
SELECT date_bin($3::interval, finished_at, '1970-01-01T00:00:00Z') AS start, status, count(*)
FROM jobs
WHERE status IN ('completed', 'failed', 'cancelled') AND finished_at >= $1 AND finished_at < $2
GROUP BY 1, 2
"""


async def record_histories(redis: Redis, pg: asyncpg.Pool, base: int, n: int, seed: int) -> None:
    """Record ``n`` job histories, duplicated and shuffled, then manual retries of failures."""
    rng = random.Random(seed)
    stream = EventStream(redis, 1_000_000)
    jobs = [
        Job(
            f"job-{seed}-{i}",
            rng.choice(QUEUES),
            rng.choice(NAMES),
            base + rng.randint(0, 3 * HOUR),
        )
        for i in range(n)
    ]
    outcomes = {j.job_id: rng.choice(OUTCOMES) for j in jobs}
    events = [e for j in jobs for e in history(j, outcomes[j.job_id], rng)]
    config = replace(FAST, batch_size=23)
    await stream.publish_many(shuffled_with_duplicates(events, rng))
    async with running(redis, pg, config):
        await wait_drained(redis)
        failed = [j for j in jobs if outcomes[j.job_id] in ("failed", "retried_failed")]
        retries = []
        for j in rng.sample(failed, len(failed) // 2):
            attempt = 2 if outcomes[j.job_id] == "failed" else 3
            outcome = rng.choice(("completed", "completed", "failed"))
            retries += manual_retry(j, attempt, base + 4 * HOUR, outcome, rng)
        await stream.publish_many(shuffled_with_duplicates(retries, rng))
        await wait_drained(redis)


def close(estimate: float | None, exact: Any) -> bool:
    if exact is None:
        return estimate is None
    return (
        estimate is not None and abs(estimate - float(exact)) <= float(exact) * RELATIVE_ERROR + 0.1
    )


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


async def test_every_endpoint_matches_a_direct_aggregation_over_jobs(
    api: TestClient, redis: Redis, pg: asyncpg.Pool
) -> None:
    base = now_ms() // HOUR * HOUR - 6 * HOUR
    await record_histories(redis, pg, base, 240, seed=11)
    start = datetime.fromtimestamp(base / 1000).astimezone()
    for interval in ("hour", "15min", "day"):
        params = {
            "startDate": start.isoformat(),
            "endDate": (start + timedelta(hours=5)).isoformat(),
            "interval": interval,
        }
        trends = await api.get(
            "/api/v1/jobs/analytics/success-trends", params=params, headers=auth()
        )
        assert trends.status == 200, await trends.text()
        body = await trends.json()
        lo = datetime.fromisoformat(body["range"]["start"])
        hi = datetime.fromisoformat(body["range"]["end"])
        assert lo <= start and hi >= start + timedelta(hours=5)
        direct = {(r["queue"], r["name"]): r for r in await pg.fetch(DIRECT, lo, hi)}
        assert direct[(None, None)]["finished"] > 150  # the window holds the histories

        per_bucket: dict[str, dict[str, int]] = {}
        for r in await pg.fetch(DIRECT_BUCKETS, lo, hi, WIDTHS[interval]):
            per_bucket.setdefault(r["start"].isoformat(), {})[r["status"]] = r["count"]
        got = {
            datetime.fromisoformat(b["start"]).isoformat(): b for b in body["overall"]["buckets"]
        }
        assert set(got) == set(per_bucket)
        for key, b in per_bucket.items():
            assert (got[key]["completed"], got[key]["failed"], got[key]["cancelled"]) == (
                b.get("completed", 0),
                b.get("failed", 0),
                b.get("cancelled", 0),
            )
        for series in [body["overall"], *body["queues"]]:
            d = direct[(series["queue"], None)]
            totals = series["totals"]
            assert (
                totals["finished"],
                totals["completed"],
                totals["failed"],
                totals["cancelled"],
            ) == (d["finished"], d["completed"], d["failed"], d["cancelled"])
            assert totals["successRate"] == rate(d["completed"], d["completed"] + d["failed"])

        perf = await api.get("/api/v1/jobs/analytics/performance", params=params, headers=auth())
        assert perf.status == 200, await perf.text()
        report = await perf.json()
        entries = [report["overall"], *report["queues"], *report["jobNames"]]
        assert len(report["jobNames"]) == len(QUEUES) * len(NAMES)
        for p in entries:
            d = direct[(p["queue"], p["name"])]
            assert (p["finished"], p["completed"], p["failed"], p["cancelled"]) == (
                d["finished"],
                d["completed"],
                d["failed"],
                d["cancelled"],
            )
            assert p["failureRate"] == rate(d["failed"], d["completed"] + d["failed"])
            assert p["retryRate"] == rate(d["retried"], d["finished"])
            dur, wait = p["durationMs"], p["waitMs"]
            assert (dur["min"], dur["max"]) == (d["d_min"], d["d_max"])
            assert abs(dur["avg"] - d["d_avg"]) <= 0.05
            assert abs(wait["avg"] - d["w_avg"]) <= 0.05
            for key in ("p50", "p95", "p99"):
                assert close(dur[key], d[f"d_{key}"]), (p["queue"], p["name"], key, dur, d)
            assert close(wait["p95"], d["w_p95"])
            hours = (hi - lo).total_seconds() / 3600
            assert p["throughputPerHour"] == round(d["finished"] / hours, 3)

        fail = await api.get("/api/v1/jobs/analytics/failures", params=params, headers=auth())
        assert fail.status == 200, await fail.text()
        failures = await fail.json()
        assert failures["totals"]["failed"] == direct[(None, None)]["failed"]
        for c in failures["byQueue"]:
            assert c["failed"] == direct[(c["queue"], None)]["failed"]
        by_print: dict[str, int] = {}
        rows = await pg.fetch(
            "SELECT error_type, error_message FROM jobs WHERE status = 'failed'"
            " AND finished_at >= $1 AND finished_at < $2",
            lo,
            hi,
        )
        for r in rows:
            fp = fingerprint(r["error_type"], r["error_message"]).value
            by_print[fp] = by_print.get(fp, 0) + 1
        assert {f["fingerprint"]: f["count"] for f in failures["fingerprints"]} == by_print
        assert sum(b["failed"] for b in failures["trend"]) == direct[(None, None)]["failed"]
