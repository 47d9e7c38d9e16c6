-- recorder janitor: every pass reads the oldest-updated unfinished jobs (waiting, delayed,
-- active) in (updated_at, id) order from a cursor. A partial index holds only those rows,
-- so it stays small (bounded by the backlog) however many finished jobs the table keeps,
-- and each pass is one short range scan.
CREATE INDEX IF NOT EXISTS jobs_unfinished_updated_idx ON jobs (updated_at, id)
    WHERE status IN ('waiting', 'delayed', 'active');
