-- Named queries of the gateway, loaded once by jobdeck_gateway.stats (jobdeck.sql).
-- known_queues and active_counts are shared with the api: jobdeck/queries.sql.
--
-- The stats queries run every tick on the measuring replica, so none of them may read many
-- rows of the jobs table (millions of rows): they read the live jobs (jobs_live_queue_idx,
-- as small as the backlog), one index probe per queue name, and the recorder's rollups for
-- what finished recently (migrations/0008_analytics.sql). See migrations/0005_gateway.sql.

-- name: job_queue
-- The queue of one job, to authorize a job-room subscription.
SELECT queue FROM jobs WHERE id = $1;

-- name: finished_windows
-- Jobs finished for good (completed / failed / cancelled) per queue, read from the minute
-- and hour rollups the recorder writes in the transaction of the job rows they count (so
-- they are exactly as fresh as `jobs`), never from `jobs`: at 1,000 jobs/s an hour holds
-- 3.6 M rows, and counting them every tick is what made a tick slow. Two kinds of window:
-- the stats window of $1 seconds over every queue (stats = true), and each configured
-- queue's own alert_failure_window_s over that queue (stats = false). A window is tiled:
-- its first and last partial hours from minute rows, the whole hours between from hour
-- rows, each tile one range scan of job_rollups' primary key. It starts at the minute
-- boundary before now - window (UTC buckets); minute rows are kept a week by default
-- (the recorder's retention), so a longer window starts at the hour after that.
WITH windows AS (
    SELECT true AS stats, NULL::text AS queue, $1::float8 AS secs
    UNION ALL
    SELECT false, queue, alert_failure_window_s::float8 FROM job_queue_configs
), tiles AS (
    SELECT w.stats, w.queue, t.level, t.lo, t.hi
    FROM windows w
    CROSS JOIN LATERAL (
        SELECT date_trunc('minute', now() - make_interval(secs => w.secs), 'UTC') AS first_minute,
               date_trunc('hour', now() - make_interval(secs => w.secs), 'UTC')
                   + interval '1 hour' AS first_hour,
               date_trunc('hour', now(), 'UTC') AS this_hour
    ) AS b
    CROSS JOIN LATERAL (VALUES
        ('minute', b.first_minute, least(b.first_hour, b.this_hour)),
        ('hour', b.first_hour, b.this_hour),
        ('minute', greatest(b.this_hour, b.first_minute), 'infinity'::timestamptz)
    ) AS t(level, lo, hi)
    WHERE t.lo < t.hi
)
SELECT t.stats,
       r.queue,
       coalesce(sum(r.jobs) FILTER (WHERE r.status = 'completed'), 0)::bigint AS completed,
       coalesce(sum(r.jobs) FILTER (WHERE r.status = 'failed'), 0)::bigint AS failed,
       coalesce(sum(r.jobs) FILTER (WHERE r.status = 'cancelled'), 0)::bigint AS cancelled
FROM tiles t
JOIN job_rollups r
  ON r.level = t.level AND r.bucket >= t.lo AND r.bucket < t.hi
 AND (t.queue IS NULL OR r.queue = t.queue)
GROUP BY t.stats, r.queue;

-- name: finished_last_minutes
-- Per queue, jobs finished for good in the current minute bucket and in the one before,
-- and how far into the current minute now is: the throughput estimate of stats.py.
SELECT queue,
       coalesce(sum(jobs) FILTER (WHERE bucket = date_trunc('minute', now(), 'UTC')), 0)::bigint
           AS this_minute,
       coalesce(sum(jobs) FILTER (WHERE bucket < date_trunc('minute', now(), 'UTC')), 0)::bigint
           AS last_minute,
       extract(epoch FROM now() - date_trunc('minute', now(), 'UTC'))::float8 AS into_minute_s
FROM job_rollups
WHERE level = 'minute' AND bucket >= date_trunc('minute', now(), 'UTC') - interval '1 minute'
GROUP BY queue;

-- name: alert_inputs
-- Per configured queue: its thresholds and its oldest waiting job (jobs_live_queue_idx);
-- its failures over its own window come from finished_windows.
SELECT c.queue,
       c.alert_failure_rate,
       c.alert_failure_window_s,
       c.alert_waiting_backlog,
       c.alert_oldest_waiting_s,
       (SELECT extract(epoch FROM now() - min(greatest(j.created_at, coalesce(j.run_at, j.created_at))))
          FROM jobs j
          WHERE j.queue = c.queue
            AND j.status = 'waiting') AS oldest_waiting_s
FROM job_queue_configs c;
