-- analytics: rollups the recorder keeps as jobs reach their final states, so that the
-- analytics endpoints read a few thousand pre-aggregated rows instead of scanning `jobs`.
--
-- job_rollups: one row per (level, bucket, queue, job name, final status). A job counts
-- once, in the bucket of its finished_at, at each level (minute, hour, day); when a
-- retried job leaves its final state the recorder subtracts it in the same transaction.
-- Histograms are sparse jsonb objects {bucket index: count} on the log scale of
-- jobdeck.histogram (4 buckets per doubling of milliseconds).
CREATE TABLE IF NOT EXISTS job_rollups (
    level         text NOT NULL CHECK (level IN ('minute', 'hour', 'day')),
    bucket        timestamptz NOT NULL,
    queue         text NOT NULL,
    name          text NOT NULL,
    status        text NOT NULL CHECK (status IN ('completed', 'failed', 'cancelled')),
    jobs          bigint NOT NULL DEFAULT 0,
    retried       bigint NOT NULL DEFAULT 0,   -- jobs that needed more than one attempt
    timed         bigint NOT NULL DEFAULT 0,   -- jobs with a duration
    duration_sum  bigint NOT NULL DEFAULT 0,
    duration_min  bigint,
    duration_max  bigint,
    duration_hist jsonb NOT NULL DEFAULT '{}'::jsonb,
    waited        bigint NOT NULL DEFAULT 0,   -- jobs with a start time (wait measured)
    wait_sum      bigint NOT NULL DEFAULT 0,
    wait_hist     jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (level, bucket, queue, name, status)
);
CREATE INDEX IF NOT EXISTS job_rollups_queue_idx ON job_rollups (level, queue, bucket);

-- Failed jobs per error fingerprint (error type + normalised message), same levels.
CREATE TABLE IF NOT EXISTS job_failure_rollups (
    level          text NOT NULL CHECK (level IN ('minute', 'hour', 'day')),
    bucket         timestamptz NOT NULL,
    queue          text NOT NULL,
    name           text NOT NULL,
    fingerprint    text NOT NULL,
    error_type     text NOT NULL,
    pattern        text NOT NULL,              -- the normalised message
    failures       bigint NOT NULL DEFAULT 0,
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL,
    sample_job_id  text NOT NULL,
    sample_message text NOT NULL,
    PRIMARY KEY (level, bucket, queue, name, fingerprint)
);

-- Every failed attempt the recorder saw (a final failure, or a failure followed by an
-- automatic retry), with its fingerprint: what a fingerprint did on retry, and the handle
-- of bulk retry/cancel by fingerprint. Written once per (job, attempt); never rewritten.
CREATE TABLE IF NOT EXISTS job_attempt_failures (
    job_id       text NOT NULL,
    attempt      integer NOT NULL,
    queue        text NOT NULL,
    name         text NOT NULL,
    fingerprint  text NOT NULL,
    error_type   text NOT NULL,
    failed_at    timestamptz NOT NULL,
    PRIMARY KEY (job_id, attempt)
);
CREATE INDEX IF NOT EXISTS job_attempt_failures_fp_idx
    ON job_attempt_failures (fingerprint, failed_at);
CREATE INDEX IF NOT EXISTS job_attempt_failures_at_idx ON job_attempt_failures (failed_at);

-- Element-wise sum of two sparse histograms; buckets that reach zero are dropped.
CREATE OR REPLACE FUNCTION jobdeck_hist_add(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(k, n), '{}'::jsonb)
    FROM (
        SELECT k, sum(v)::bigint AS n
        FROM (
            SELECT key AS k, value::text::bigint AS v FROM jsonb_each(a)
            UNION ALL
            SELECT key, value::text::bigint FROM jsonb_each(b)
        ) AS parts
        GROUP BY k
        HAVING sum(v) <> 0
    ) AS summed
$$;
