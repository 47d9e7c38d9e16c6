-- Drain a queue: remove up to n of its waiting (and, if asked, delayed) jobs, each with its
-- `cancelled` event naming who drained it, atomically per call (the caller repeats).
-- KEYS: ready set, delayed set, event stream
-- ARGV: n, include delayed ('1'/'0'), job key prefix, queue, now ms, by, stream maxlen, keep ms
-- Returns the number of jobs removed.
local n, prefix, queue, now = tonumber(ARGV[1]), ARGV[3], ARGV[4], tonumber(ARGV[5])
local removed = 0
local sets = {KEYS[1]}
if ARGV[2] == '1' then sets[2] = KEYS[2] end
for _, set in ipairs(sets) do
  if removed >= n then break end
  local ids = redis.call('ZRANGE', set, 0, n - removed - 1)
  for _, id in ipairs(ids) do
    redis.call('ZREM', set, id)
    local h = prefix .. id
    local f = redis.call('HMGET', h, 'state', 'off', 'runs', 'name')
    if f[1] == 'waiting' or f[1] == 'delayed' then
      redis.call('HSET', h, 'state', 'done')
      redis.call('PEXPIRE', h, ARGV[8])
      local event = {v = 1, type = 'cancelled', ts = now, queue = queue, job_id = id,
        attempt = tonumber(f[2]) + tonumber(f[3]) + 1, name = f[4], started_at = cjson.null,
        finished_at = now, by = ARGV[6]}
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*', 'e', cmsgpack.pack(event))
      removed = removed + 1
    end
  end
end
return removed
