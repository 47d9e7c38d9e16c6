-- scheduler: per-schedule policies and counters, the run history, change notifications.
-- Touches only job_templates / job_schedules and its own table and function.

ALTER TABLE job_templates ADD COLUMN IF NOT EXISTS updated_by text;

-- Deleting a template with ?force=true disables its schedules and detaches them (a
-- schedule without a template never fires, and cannot be enabled until given one).
ALTER TABLE job_schedules ALTER COLUMN template_id DROP NOT NULL;
ALTER TABLE job_schedules DROP CONSTRAINT IF EXISTS job_schedules_template_id_fkey;
ALTER TABLE job_schedules ADD CONSTRAINT job_schedules_template_id_fkey
    FOREIGN KEY (template_id) REFERENCES job_templates (id) ON DELETE SET NULL;

ALTER TABLE job_schedules
    ADD COLUMN IF NOT EXISTS overlap_policy text NOT NULL DEFAULT 'skip'
        CHECK (overlap_policy IN ('skip', 'allow', 'queue_one')),
    ADD COLUMN IF NOT EXISTS catch_up_policy text NOT NULL DEFAULT 'once'
        CHECK (catch_up_policy IN ('skip', 'once', 'all')),
    ADD COLUMN IF NOT EXISTS catch_up_window_s integer NOT NULL DEFAULT 900
        CHECK (catch_up_window_s BETWEEN 0 AND 86400),
    ADD COLUMN IF NOT EXISTS catch_up_limit integer NOT NULL DEFAULT 100
        CHECK (catch_up_limit BETWEEN 1 AND 1000),
    ADD COLUMN IF NOT EXISTS jitter_s integer NOT NULL DEFAULT 0
        CHECK (jitter_s BETWEEN 0 AND 86400),
    ADD COLUMN IF NOT EXISTS disabled_reason text,
    ADD COLUMN IF NOT EXISTS disabled_at timestamptz,
    -- set when the schedule disabled itself; cleared once its alert is on the stream
    ADD COLUMN IF NOT EXISTS alert_pending boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS runs_fired bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS runs_skipped bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS runs_missed bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS runs_failed_to_enqueue bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS updated_by text;

-- The scheduler's claim: due enabled rows in time order.
CREATE INDEX IF NOT EXISTS job_schedules_due_idx
    ON job_schedules (next_run_at) WHERE is_enabled;
CREATE INDEX IF NOT EXISTS job_schedules_alert_idx
    ON job_schedules (id) WHERE alert_pending;

-- One row per fired, skipped or failed slot, and one per contiguous range of missed slots
-- (slot_count > 1). A slot is recorded at most once: the unique index is the last line
-- of defence behind the claim (FOR UPDATE SKIP LOCKED) and the deterministic job id.
CREATE TABLE IF NOT EXISTS job_schedule_runs (
    id            bigserial PRIMARY KEY,
    schedule_id   text NOT NULL REFERENCES job_schedules (id) ON DELETE CASCADE,
    scheduled_at  timestamptz NOT NULL,
    last_slot_at  timestamptz,
    slot_count    integer NOT NULL DEFAULT 1,
    trigger       text NOT NULL CHECK (trigger IN ('cron', 'catch_up', 'manual')),
    outcome       text NOT NULL
        CHECK (outcome IN ('enqueued', 'skipped_overlap', 'missed', 'failed_to_enqueue')),
    reason        text,
    enqueued_at   timestamptz,
    lag_ms        bigint,
    job_id        text,
    job_status    text,
    settled_at    timestamptz,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    recorded_by   text
);
CREATE UNIQUE INDEX IF NOT EXISTS job_schedule_runs_slot_idx
    ON job_schedule_runs (schedule_id, scheduled_at) WHERE trigger <> 'manual';
CREATE INDEX IF NOT EXISTS job_schedule_runs_history_idx
    ON job_schedule_runs (schedule_id, id DESC);
-- Runs whose job has not finished yet: the overlap check and the failure counter read these.
CREATE INDEX IF NOT EXISTS job_schedule_runs_open_idx
    ON job_schedule_runs (schedule_id) WHERE outcome = 'enqueued' AND job_status IS NULL;

-- Wake the schedulers when a schedule changes (they LISTEN on jobdeck_schedules). One
-- notification per statement; the schedulers' own updates say so with
-- ``SET LOCAL jobdeck.scheduler = 'on'`` and do not wake anyone.
CREATE OR REPLACE FUNCTION jobdeck_notify_schedules() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('jobdeck.scheduler', true), '') <> 'on' THEN
        PERFORM pg_notify('jobdeck_schedules', '');
    END IF;
    RETURN NULL;
END;
$$;
DROP TRIGGER IF EXISTS job_schedules_notify ON job_schedules;
CREATE TRIGGER job_schedules_notify
    AFTER INSERT OR UPDATE OR DELETE ON job_schedules
    FOR EACH STATEMENT EXECUTE FUNCTION jobdeck_notify_schedules();
