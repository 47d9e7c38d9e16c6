-- retention (issue 12): how long each queue keeps its finished jobs and their logs, and
-- where the pruner's log pass stopped. NULL takes the recorder's default
-- (JOBDECK_RECORDER_RETENTION_*_DAYS); 0 keeps forever.
ALTER TABLE job_queue_configs
    ADD COLUMN IF NOT EXISTS keep_completed_days integer CHECK (keep_completed_days >= 0),
    ADD COLUMN IF NOT EXISTS keep_failed_days integer CHECK (keep_failed_days >= 0),
    ADD COLUMN IF NOT EXISTS keep_logs_days integer CHECK (keep_logs_days >= 0);

-- Per queue and final status: the finish time up to which the logs of its finished jobs
-- are already pruned, so that each log pass reads only the jobs finished since the last.
CREATE TABLE IF NOT EXISTS job_retention_state (
    queue             text NOT NULL,
    status            text NOT NULL,
    logs_pruned_until timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (queue, status)
);

-- Jobs removed on request (DELETE /api/v1/jobs/{id}, bulk delete, queue clean): the recorder
-- drops a removed job's events older than its removal, so that an event delivered again
-- (a recorder restart) cannot bring the row back; a new job under the same id is newer and
-- recorded. The pruner forgets tombstones after the stream's horizon.
CREATE TABLE IF NOT EXISTS job_tombstones (
    id         text PRIMARY KEY,
    queue      text NOT NULL,
    removed_at timestamptz NOT NULL DEFAULT now(),
    removed_by text
);
CREATE INDEX IF NOT EXISTS job_tombstones_removed_idx ON job_tombstones (removed_at);
