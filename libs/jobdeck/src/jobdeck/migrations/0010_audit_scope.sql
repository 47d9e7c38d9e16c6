-- The queue scope of the caller behind each audit row (["*"] for every queue), so a
-- reviewer can tell what the caller was allowed to touch. NULL on rows written before.
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS scope text[];
