-- gateway: the stats of every tick (5 s) read only jobs that are not finished yet and jobs
-- finished in the last hour, never the whole table. Both indexes are small next to `jobs`:
-- the first holds the live jobs only (bounded by the backlog), the second leads with
-- finished_at so a time window is one range scan; both cover their queries (index-only).
CREATE INDEX IF NOT EXISTS jobs_live_queue_idx ON jobs (queue, status)
    INCLUDE (created_at, run_at)
    WHERE status IN ('waiting', 'delayed', 'active');
CREATE INDEX IF NOT EXISTS jobs_final_finished_idx ON jobs (finished_at, queue, status)
    WHERE status IN ('completed', 'failed', 'cancelled');
