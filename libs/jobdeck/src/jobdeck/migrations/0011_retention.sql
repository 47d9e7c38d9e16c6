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
