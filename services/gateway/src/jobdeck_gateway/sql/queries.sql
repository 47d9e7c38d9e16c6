-- Named queries of the gateway, loaded once by jobdeck_gateway.sql.

-- name: job_queue
-- The queue of one job, to authorize a job-room subscription.
SELECT queue FROM jobs WHERE id = $1;

-- name: status_counts
-- Jobs per queue and status (the recorder's view; Redis gives waiting/delayed live).
SELECT queue, status, count(*)::bigint AS n FROM jobs GROUP BY queue, status;

-- name: recent_finished
-- Jobs finished per queue in the last $1 seconds (throughput), failed ones apart.
SELECT queue,
       count(*)::bigint AS finished,
       count(*) FILTER (WHERE status = 'failed')::bigint AS failed
FROM jobs
WHERE finished_at > now() - make_interval(secs => $1::float8)
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
          FROM jobs j WHERE j.queue = c.queue AND j.status = 'waiting') AS oldest_waiting_s
FROM job_queue_configs c
LEFT JOIN LATERAL (
    SELECT count(*)::bigint AS finished,
           count(*) FILTER (WHERE j.status = 'failed')::bigint AS failed
    FROM jobs j
    WHERE j.queue = c.queue
      AND j.status IN ('completed', 'failed')
      AND j.finished_at > now() - make_interval(secs => c.alert_failure_window_s::float8)
) w ON true;
