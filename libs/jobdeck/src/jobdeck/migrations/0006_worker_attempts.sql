-- worker runtime (issue 7): every attempt of a job, as the recorder saw it, and the stream
-- position of the event that set a job row's version.
--
-- job_attempts: one row per (job, attempt) from its `started` and final event: who ran it,
-- when, how it ended (outcome: running, completed, failed, retrying, cancelled; error_type
-- says WorkerShutdown for a hand-back, LeaseExpired for a run whose worker died or stalled,
-- JobLost for a job Redis lost). final_ms/final_seq: the stream id of the final event kept;
-- of two final events of one attempt, the one earlier in the stream wins, whatever order
-- the recorders committed them in.
CREATE TABLE IF NOT EXISTS job_attempts (
    job_id          text NOT NULL,
    attempt         integer NOT NULL,
    worker          text,
    started_at      timestamptz,
    finished_at     timestamptz,
    outcome         text NOT NULL DEFAULT 'running',
    error_type      text,
    error_message   text,
    error_traceback text,
    final_ms        bigint,
    final_seq       bigint,
    PRIMARY KEY (job_id, attempt)
);

-- The stream id (ms, seq) of the event that set jobs.version, so that two final events of
-- one version are ordered by the stream, not by commit order. NULL: written before this
-- migration, or by a writer that did not know the stream id.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS version_ms bigint;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS version_seq bigint;
