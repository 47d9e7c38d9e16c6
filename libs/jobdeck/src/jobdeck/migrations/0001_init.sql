-- jobdeck schema, version 1.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE jobs (
    id               text PRIMARY KEY,
    queue            text NOT NULL,
    name             text NOT NULL DEFAULT '',
    status           text NOT NULL CHECK (status IN ('waiting','delayed','active','completed','failed','cancelled')),
    priority         integer NOT NULL DEFAULT 0,
    data             jsonb,
    options          jsonb NOT NULL DEFAULT '{}'::jsonb,
    result           jsonb,
    error_type       text,
    error_message    text,
    error_traceback  text,
    progress         real NOT NULL DEFAULT 0,
    progress_message text,
    attempts         integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 1,
    worker           text,
    created_at       timestamptz NOT NULL,
    run_at           timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    duration_ms      bigint,
    cancelled_by     text,
    template_id      text,
    schedule_id      text,
    version          integer NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Search filters: status/queue with the time and sort columns, id as the stable tie-break.
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_queue_created_idx ON jobs (queue, created_at DESC, id DESC);
CREATE INDEX jobs_status_created_idx ON jobs (status, created_at DESC, id DESC);
CREATE INDEX jobs_queue_status_created_idx ON jobs (queue, status, created_at DESC, id DESC);
CREATE INDEX jobs_finished_idx ON jobs (finished_at DESC, id DESC) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_started_idx ON jobs (started_at DESC, id DESC) WHERE started_at IS NOT NULL;
CREATE INDEX jobs_duration_idx ON jobs (duration_ms DESC, id DESC) WHERE duration_ms IS NOT NULL;
CREATE INDEX jobs_priority_idx ON jobs (priority DESC, created_at DESC, id DESC);
CREATE INDEX jobs_name_trgm_idx ON jobs USING gin (name gin_trgm_ops);

CREATE TABLE job_logs (
    job_id   text NOT NULL,
    attempt  integer NOT NULL,
    seq      integer NOT NULL,
    ts       timestamptz NOT NULL,
    level    text NOT NULL,
    message  text NOT NULL,
    PRIMARY KEY (job_id, attempt, seq)
);

CREATE TABLE job_templates (
    id           text PRIMARY KEY DEFAULT md5(random()::text || clock_timestamp()::text),
    name         text NOT NULL UNIQUE,
    description  text,
    queue        text NOT NULL,
    task         text NOT NULL,
    data         jsonb,
    priority     integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 3,
    backoff_ms   integer NOT NULL DEFAULT 1000,
    timeout_s    real NOT NULL DEFAULT 300,
    created_by   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE job_schedules (
    id                   text PRIMARY KEY DEFAULT md5(random()::text || clock_timestamp()::text),
    name                 text NOT NULL UNIQUE,
    description          text,
    template_id          text NOT NULL REFERENCES job_templates (id) ON DELETE RESTRICT,
    cron_expression      text NOT NULL,
    timezone             text NOT NULL DEFAULT 'UTC',
    priority             integer,
    data                 jsonb,
    is_enabled           boolean NOT NULL DEFAULT true,
    max_consecutive_failures integer NOT NULL DEFAULT 5,
    consecutive_failures integer NOT NULL DEFAULT 0,
    last_run_at          timestamptz,
    last_job_id          text,
    last_error           text,
    next_run_at          timestamptz,
    created_by           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_schedules_template_idx ON job_schedules (template_id);

CREATE TABLE job_queue_configs (
    queue                     text PRIMARY KEY,
    concurrency               integer NOT NULL DEFAULT 10 CHECK (concurrency > 0),
    timeout_s                 real NOT NULL DEFAULT 300 CHECK (timeout_s > 0),
    max_attempts              integer NOT NULL DEFAULT 3 CHECK (max_attempts > 0),
    backoff_ms                integer NOT NULL DEFAULT 1000 CHECK (backoff_ms >= 0),
    alert_failure_rate        real CHECK (alert_failure_rate BETWEEN 0 AND 1),
    alert_failure_window_s    integer NOT NULL DEFAULT 300,
    alert_waiting_backlog     integer,
    alert_oldest_waiting_s    integer,
    description               text,
    updated_by                text,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    roles       text[] NOT NULL DEFAULT '{}',
    action      text NOT NULL,
    targets     jsonb NOT NULL DEFAULT '[]'::jsonb,
    outcome     text NOT NULL,
    detail      jsonb,
    request_id  text
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor, at DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC);

CREATE TABLE exports (
    id           text PRIMARY KEY,
    requested_by text NOT NULL,
    format       text NOT NULL CHECK (format IN ('csv','json','excel')),
    filters      jsonb NOT NULL DEFAULT '{}'::jsonb,
    fields       text[],
    include_data boolean NOT NULL DEFAULT false,
    include_logs boolean NOT NULL DEFAULT false,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','running','done','failed')),
    row_count    bigint,
    size_bytes   bigint,
    storage_key  text,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    expires_at   timestamptz
);
CREATE INDEX exports_requested_by_idx ON exports (requested_by, created_at DESC);
