-- Named queries of the gateway, loaded once by jobdeck_gateway.stats (jobdeck.sql).
-- known_queues and active_counts are shared with the api: jobdeck/queries.sql.
--
-- The stats queries run every tick on the measuring replica, so none of them may read the
-- whole jobs table (millions of rows): they read the live jobs (jobs_live_queue_idx, as
-- small as the backlog), the jobs finished in a recent window (jobs_final_finished_idx,
-- one range scan) and one index probe per queue name. See migrations/0005_gateway.sql.

-- name: job_queue
-- The queue of one job, to authorize a job-room subscription.
SELECT queue FROM jobs WHERE id = $1;

-- name: recent_finished
-- Jobs finished for good per queue in the last $1 seconds (completed / failed / cancelled),
-- and how many of them finished in the last $2 seconds (throughput).
SELECT queue,
       count(*) FILTER (WHERE status = 'completed')::bigint AS completed,
       count(*) FILTER (WHERE status = 'failed')::bigint AS failed,
       count(*) FILTER (WHERE status = 'cancelled')::bigint AS cancelled,
       count(*) FILTER (
           WHERE finished_at > now() - make_interval(secs => $2::float8)
       )::bigint AS finished_recently
FROM jobs
WHERE status IN ('completed', 'failed', 'cancelled')
  AND finished_at > now() - make_interval(secs => $1::float8)
GROUP BY queue;

-- name: alert_inputs
-- Per configured queue: its thresholds, failures over its own window, oldest waiting job.
SELECT c.queue,
       c.alert_failure_rate,
       c.alert_failure_window_s,
       c.alert_waiting_backlog,
       c.alert_oldest_waiting_s,
       w.finished,
       w.failed,
       (SELECT extract(epoch FROM now() - min(greatest(j.created_at, coalesce(j.run_at, j.created_at))))
          FROM jobs j
          WHERE j.queue = c.queue
            AND j.status = 'waiting') AS oldest_waiting_s
FROM job_queue_configs c
LEFT JOIN LATERAL (
    SELECT count(*)::bigint AS finished,
           count(*) FILTER (WHERE j.status = 'failed')::bigint AS failed
    FROM jobs j
    WHERE j.queue = c.queue
      AND j.status IN ('completed', 'failed')
      AND j.finished_at > now() - make_interval(secs => c.alert_failure_window_s::float8)
) w ON true;
