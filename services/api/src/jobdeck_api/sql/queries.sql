-- Static queries of the api service, loaded once by queries.py (jobdeck.sql);
-- known_queues and active_counts are shared with the gateway: jobdeck/queries.sql.

-- name: job_detail
SELECT * FROM jobs WHERE id = $1;

-- name: job_attempts
-- Each attempt's history row (recorder) joined with its log lines' count and span.
WITH logs AS (
    SELECT attempt, count(*) AS log_lines, min(ts) AS first_log_at, max(ts) AS last_log_at
    FROM job_logs WHERE job_id = $1 GROUP BY attempt
), runs AS (
    SELECT * FROM job_attempts WHERE job_id = $1
)
SELECT coalesce(r.attempt, l.attempt) AS attempt, coalesce(l.log_lines, 0) AS log_lines,
       l.first_log_at, l.last_log_at, r.worker, r.started_at, r.finished_at, r.outcome,
       r.error_type, r.error_message, r.error_traceback
FROM runs r FULL JOIN logs l ON l.attempt = r.attempt
ORDER BY 1;

-- name: job_logs
SELECT attempt, seq, ts, level, message FROM job_logs
WHERE job_id = $1 AND ($2::int IS NULL OR attempt = $2) AND level = ANY($3::text[])
ORDER BY attempt, seq LIMIT $4 OFFSET $5;

-- name: job_logs_count
SELECT count(*) FROM job_logs
WHERE job_id = $1 AND ($2::int IS NULL OR attempt = $2) AND level = ANY($3::text[]);

-- name: jobs_for_action
SELECT * FROM jobs WHERE id = ANY($1::text[]);

-- name: existing_job_ids
SELECT id FROM jobs WHERE id = ANY($1::text[]);

-- name: queue_config
SELECT * FROM job_queue_configs WHERE queue = $1;

-- name: queue_configs_for
SELECT * FROM job_queue_configs WHERE queue = ANY($1::text[]);

-- name: all_queue_configs
SELECT * FROM job_queue_configs ORDER BY queue;

-- name: templates_for
SELECT * FROM job_templates WHERE id = ANY($1::text[]);

-- name: upsert_queue_config
INSERT INTO job_queue_configs AS c (
    queue, concurrency, timeout_s, max_attempts, backoff_ms, alert_failure_rate,
    alert_failure_window_s, alert_waiting_backlog, alert_oldest_waiting_s, description, updated_by,
    keep_completed_days, keep_failed_days, keep_logs_days
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (queue) DO UPDATE SET
    concurrency = EXCLUDED.concurrency, timeout_s = EXCLUDED.timeout_s,
    max_attempts = EXCLUDED.max_attempts, backoff_ms = EXCLUDED.backoff_ms,
    alert_failure_rate = EXCLUDED.alert_failure_rate,
    alert_failure_window_s = EXCLUDED.alert_failure_window_s,
    alert_waiting_backlog = EXCLUDED.alert_waiting_backlog,
    alert_oldest_waiting_s = EXCLUDED.alert_oldest_waiting_s,
    description = EXCLUDED.description, updated_by = EXCLUDED.updated_by, updated_at = now(),
    keep_completed_days = EXCLUDED.keep_completed_days,
    keep_failed_days = EXCLUDED.keep_failed_days, keep_logs_days = EXCLUDED.keep_logs_days
RETURNING *, (xmax = 0) AS inserted;

-- name: delete_queue_config
DELETE FROM job_queue_configs WHERE queue = $1 RETURNING queue;

-- name: queue_schedules
SELECT s.id, s.name, s.cron_expression, s.timezone, s.is_enabled, s.next_run_at,
       s.last_run_at, t.queue
FROM job_schedules s JOIN job_templates t ON t.id = s.template_id
WHERE t.queue = ANY($1::text[])
ORDER BY s.next_run_at NULLS LAST, s.name;

-- name: scheduled_queues
SELECT DISTINCT t.queue FROM job_schedules s JOIN job_templates t ON t.id = s.template_id;

-- name: insert_audit
INSERT INTO audit_log (actor, roles, action, targets, outcome, detail, request_id, scope)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- name: audit_page
SELECT * FROM audit_log
WHERE ($1::text IS NULL OR actor = $1)
  AND ($2::text IS NULL OR action = $2)
  AND ($3::text IS NULL OR outcome = $3)
  AND ($4::timestamptz IS NULL OR at >= $4)
  AND ($5::timestamptz IS NULL OR at < $5)
  AND ($6::bigint IS NULL OR id < $6)
ORDER BY id DESC LIMIT $7;

-- name: delete_jobs
-- Deletes the finished jobs of $1 (rows and log lines) and leaves a tombstone for each (the
-- recorder drops their late events); returns the ids deleted. A job no longer finished
-- (a retry recorded meanwhile) is left alone.
WITH doomed AS (
    SELECT id, queue FROM jobs
    WHERE id = ANY($1::text[]) AND status IN ('completed', 'failed', 'cancelled')
    FOR UPDATE
), tomb AS (
    INSERT INTO job_tombstones AS t (id, queue, removed_by)
    SELECT id, queue, $2 FROM doomed
    ON CONFLICT (id) DO UPDATE
    SET queue = EXCLUDED.queue, removed_at = now(), removed_by = EXCLUDED.removed_by
), logs AS (
    DELETE FROM job_logs l USING doomed d WHERE l.job_id = d.id
)
DELETE FROM jobs j USING doomed d WHERE j.id = d.id RETURNING j.id;

-- name: set_priority
UPDATE jobs SET priority = $2, updated_at = now()
WHERE id = $1 AND status IN ('waiting', 'delayed');
