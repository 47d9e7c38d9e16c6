-- Templates and schedules of the api service (templates_api.py, schedules_api.py).

-- name: template_list
SELECT t.*, (SELECT count(*) FROM job_schedules s WHERE s.template_id = t.id) AS schedules,
       count(*) OVER () AS total
FROM job_templates t
WHERE ($1::text[] IS NULL OR t.queue = ANY($1::text[]))
  AND ($2::text IS NULL OR t.queue = $2)
  AND ($3::text IS NULL OR t.name ILIKE '%' || $3 || '%')
ORDER BY t.name
LIMIT $4 OFFSET $5;

-- name: template_get
SELECT t.*, (SELECT count(*) FROM job_schedules s WHERE s.template_id = t.id) AS schedules
FROM job_templates t WHERE t.id = $1;

-- name: template_resolve
-- A template by id, or by its unique name (the seed's 'price-update-template-id').
SELECT * FROM job_templates WHERE id = $1
UNION ALL
SELECT * FROM job_templates WHERE name = $1 AND id <> $1
LIMIT 1;

-- name: template_insert
INSERT INTO job_templates (
    name, description, queue, task, data, priority, max_attempts, timeout_s, backoff_ms,
    created_by, updated_by
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
RETURNING *, 0::bigint AS schedules;

-- name: template_update
UPDATE job_templates SET
    name = $2, description = $3, queue = $4, task = $5, data = $6, priority = $7,
    max_attempts = $8, timeout_s = $9, backoff_ms = $10, updated_by = $11, updated_at = now()
WHERE id = $1
RETURNING *, (SELECT count(*) FROM job_schedules s WHERE s.template_id = job_templates.id) AS schedules;

-- name: template_schedules
SELECT id FROM job_schedules WHERE template_id = $1 ORDER BY id FOR UPDATE;

-- name: schedules_detach
UPDATE job_schedules SET
    is_enabled = false, next_run_at = NULL, disabled_at = now(), disabled_reason = $2,
    updated_by = $3, updated_at = now()
WHERE template_id = $1;

-- name: template_delete
DELETE FROM job_templates WHERE id = $1 RETURNING id;

-- name: schedule_select
SELECT s.*, t.name AS template_name, t.queue, t.task, j.status AS last_status
FROM job_schedules s
LEFT JOIN job_templates t ON t.id = s.template_id
LEFT JOIN jobs j ON j.id = s.last_job_id

-- name: schedule_list
SELECT s.*, t.name AS template_name, t.queue, t.task, j.status AS last_status,
       count(*) OVER () AS total
FROM job_schedules s
LEFT JOIN job_templates t ON t.id = s.template_id
LEFT JOIN jobs j ON j.id = s.last_job_id
WHERE ($1::text[] IS NULL OR t.queue = ANY($1::text[]))
  AND ($2::bool IS NULL OR s.is_enabled = $2)
  AND ($3::text IS NULL OR t.queue = $3)
  AND ($4::text IS NULL OR s.template_id = $4)
ORDER BY s.name
LIMIT $5 OFFSET $6;

-- name: schedule_insert
INSERT INTO job_schedules (
    name, description, template_id, cron_expression, timezone, priority, data, is_enabled,
    overlap_policy, catch_up_policy, catch_up_window_s, catch_up_limit, jitter_s,
    max_consecutive_failures, next_run_at, created_by, updated_by
) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
RETURNING id;

-- name: schedule_update
UPDATE job_schedules SET
    name = $2, description = $3, template_id = $4, cron_expression = $5, timezone = $6,
    priority = $7, data = $8, is_enabled = $9, overlap_policy = $10, catch_up_policy = $11,
    catch_up_window_s = $12, catch_up_limit = $13, jitter_s = $14,
    max_consecutive_failures = $15, next_run_at = $16, updated_by = $17, updated_at = now(),
    consecutive_failures = CASE WHEN $18 THEN 0 ELSE consecutive_failures END,
    disabled_reason = CASE WHEN $9 THEN NULL ELSE coalesce($19, disabled_reason) END,
    disabled_at = CASE WHEN $9 THEN NULL WHEN $19 IS NOT NULL THEN now() ELSE disabled_at END
WHERE id = $1
RETURNING id;

-- name: schedule_lock
SELECT s.*, t.queue FROM job_schedules s LEFT JOIN job_templates t ON t.id = s.template_id
WHERE s.id = $1 FOR UPDATE OF s;

-- name: schedule_job
-- A schedule with its template's job fields, as jobdeck.schedules.scheduled_job reads them.
SELECT s.id, s.priority, s.data, t.id AS template_id, t.queue, t.task,
       t.data AS template_data, t.priority AS template_priority, t.max_attempts,
       t.backoff_ms, t.timeout_s
FROM job_schedules s LEFT JOIN job_templates t ON t.id = s.template_id
WHERE s.id = $1;

-- name: schedule_delete
DELETE FROM job_schedules WHERE id = $1 RETURNING id;

-- name: run_insert_manual
INSERT INTO job_schedule_runs (
    schedule_id, scheduled_at, trigger, outcome, enqueued_at, lag_ms, job_id, recorded_by
) VALUES ($1, $2, 'manual', 'enqueued', $3, 0, $4, $5)
RETURNING *, NULL::text AS live_status;

-- name: schedule_ran
UPDATE job_schedules SET last_run_at = $2, last_job_id = $3, runs_fired = runs_fired + 1
WHERE id = $1;

-- name: run_page
SELECT r.*, j.status AS live_status
FROM job_schedule_runs r LEFT JOIN jobs j ON j.id = r.job_id
WHERE r.schedule_id = $1
  AND ($2::text IS NULL OR r.outcome = $2)
  AND ($3::bigint IS NULL OR r.id < $3)
ORDER BY r.id DESC
LIMIT $4;
