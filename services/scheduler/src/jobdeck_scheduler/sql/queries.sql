-- Static queries of the scheduler, loaded once by queries.py.

-- name: claim_due
-- Due enabled schedules, oldest first; rows another replica holds are skipped, so each
-- slot is decided by exactly one transaction.
SELECT s.id, s.name, s.cron_expression, s.timezone, s.next_run_at, s.priority, s.data,
       s.overlap_policy, s.catch_up_policy, s.catch_up_window_s, s.catch_up_limit, s.jitter_s,
       t.id AS template_id, t.queue, t.task, t.data AS template_data,
       t.priority AS template_priority, t.max_attempts, t.backoff_ms, t.timeout_s
FROM job_schedules s JOIN job_templates t ON t.id = s.template_id
WHERE s.is_enabled AND s.next_run_at <= $1
ORDER BY s.next_run_at
LIMIT $2
FOR UPDATE OF s SKIP LOCKED;

-- name: open_runs
-- Earlier runs whose job is not known to be finished, with the job's status if recorded.
SELECT r.schedule_id, j.status
FROM job_schedule_runs r LEFT JOIN jobs j ON j.id = r.job_id
WHERE r.schedule_id = ANY($1::text[]) AND r.outcome = 'enqueued' AND r.job_status IS NULL
  AND (j.status IS NULL OR j.status IN ('waiting', 'delayed', 'active'));

-- name: insert_runs
INSERT INTO job_schedule_runs (
    schedule_id, scheduled_at, last_slot_at, slot_count, trigger, outcome, reason,
    enqueued_at, lag_ms, job_id, recorded_by
)
SELECT * FROM unnest(
    $1::text[], $2::timestamptz[], $3::timestamptz[], $4::int[], $5::text[], $6::text[],
    $7::text[], $8::timestamptz[], $9::bigint[], $10::text[], $11::text[]
);

-- name: advance
UPDATE job_schedules s SET
    next_run_at = u.next_run_at,
    last_run_at = coalesce(u.last_run_at, s.last_run_at),
    last_job_id = coalesce(u.last_job_id, s.last_job_id),
    runs_fired = s.runs_fired + u.fired,
    runs_skipped = s.runs_skipped + u.skipped,
    runs_missed = s.runs_missed + u.missed,
    runs_failed_to_enqueue = s.runs_failed_to_enqueue + u.failed,
    -- a slot that could not be queued is a failed run for the failure policy
    consecutive_failures = s.consecutive_failures + u.failed,
    last_error = CASE WHEN u.failed > 0 THEN u.error ELSE s.last_error END
FROM unnest(
    $1::text[], $2::timestamptz[], $3::timestamptz[], $4::text[], $5::bigint[], $6::bigint[],
    $7::bigint[], $8::bigint[], $9::text[]
) AS u(id, next_run_at, last_run_at, last_job_id, fired, skipped, missed, failed, error)
WHERE s.id = u.id
RETURNING s.id, u.failed, s.consecutive_failures, s.max_consecutive_failures, s.last_error;

-- name: next_due
SELECT min(next_run_at) FROM job_schedules WHERE is_enabled;

-- name: settle_runs
-- Runs whose job has finished, as the recorder saw it: mark them, oldest first.
WITH done AS (
    SELECT r.id, j.status, j.error_message
    FROM job_schedule_runs r JOIN jobs j ON j.id = r.job_id
    WHERE r.outcome = 'enqueued' AND r.job_status IS NULL
      AND j.status IN ('completed', 'failed', 'cancelled')
    ORDER BY r.id
    LIMIT $1
    FOR UPDATE OF r SKIP LOCKED
)
UPDATE job_schedule_runs r SET job_status = done.status, settled_at = now()
FROM done WHERE r.id = done.id
RETURNING r.schedule_id, r.scheduled_at, r.job_id, r.job_status, done.error_message;

-- name: apply_outcomes
UPDATE job_schedules SET
    consecutive_failures = CASE WHEN $2 THEN $3 ELSE consecutive_failures + $3 END,
    last_error = coalesce($4, last_error)
WHERE id = $1
RETURNING consecutive_failures, max_consecutive_failures, is_enabled;

-- name: auto_disable
-- Only the transaction that flips is_enabled gets a row back: one alert per disable.
UPDATE job_schedules SET
    is_enabled = false, disabled_reason = $2, disabled_at = now(), alert_pending = true,
    next_run_at = NULL, updated_at = now()
WHERE id = $1 AND is_enabled
RETURNING id;

-- name: insert_audit
INSERT INTO audit_log (actor, roles, action, targets, outcome, detail)
VALUES ($1, '{}', $2, $3, $4, $5);

-- name: pending_alerts
SELECT s.id, s.name, s.disabled_reason, s.disabled_at, s.consecutive_failures,
       s.max_consecutive_failures, t.queue
FROM job_schedules s JOIN job_templates t ON t.id = s.template_id
WHERE s.alert_pending
LIMIT $1
FOR UPDATE OF s SKIP LOCKED;

-- name: alert_sent
UPDATE job_schedules SET alert_pending = false WHERE id = $1;
