-- Claim up to n ready jobs for one worker, in priority order, after two chores that keep
-- the queue honest: runs whose lease expired go back to the ready set (or fail, past their
-- budget) with an event for the lost attempt, and delayed jobs now due enter the ready set
-- with their priority ("due - priority * weight": FIFO by due time within a priority).
-- Running jobs are not in the ready set, so a claim never reads past them.
-- KEYS: ready set, delayed set, active set, paused hash, event stream
-- ARGV: now ms, n, lease ms, worker, queue, job key prefix, priority weight, chore budget,
--       stream maxlen, keep ms
-- Returns {next due ms or -1, then id, spec, runs, handed back, token for each job claimed}.
local now, n, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local worker, queue, prefix = ARGV[4], ARGV[5], ARGV[6]
local weight, budget = tonumber(ARGV[7]), tonumber(ARGV[8])

local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, budget)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[3], id)
  local h = prefix .. id
  local f = redis.call('HMGET', h, 'state', 'runs', 'hb', 'off', 'max', 'name', 'worker',
    'started', 'score')
  if f[1] == 'active' then
    local attempt = tonumber(f[4]) + tonumber(f[2])
    local started = tonumber(f[8]) or now
    local event = {v = 1, ts = now, queue = queue, job_id = id, attempt = attempt,
      name = f[6], started_at = started, finished_at = now, duration_ms = now - started,
      worker = f[7], error_type = 'LeaseExpired',
      error_message = 'the lease of worker ' .. tostring(f[7]) ..
        ' expired (the process died or stopped renewing)'}
    redis.call('HDEL', h, 'token', 'abort')
    if attempt - tonumber(f[3]) >= tonumber(f[5]) then
      event.type = 'failed'
      redis.call('HSET', h, 'state', 'done')
      redis.call('PEXPIRE', h, ARGV[10])
    else
      event.type = 'retrying'
      event.retry_at = now
      redis.call('HSET', h, 'state', 'waiting')
      redis.call('ZADD', KEYS[1], f[9], id)
    end
    redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[9], '*', 'e', cmsgpack.pack(event))
  end
end

local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES', 'LIMIT', 0, budget)
for i = 1, #due, 2 do
  local id = due[i]
  redis.call('ZREM', KEYS[2], id)
  local h = prefix .. id
  local prio = redis.call('HGET', h, 'prio')
  if prio then
    local score = string.format('%.0f', tonumber(due[i + 1]) - tonumber(prio) * weight)
    redis.call('HSET', h, 'state', 'waiting', 'score', score)
    redis.call('ZADD', KEYS[1], score, id)
  end
end

local out = {-1}
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #nxt > 0 then out[1] = tonumber(nxt[2]) end
if n <= 0 or redis.call('HEXISTS', KEYS[4], queue) == 1 then return out end
local deadline = now + lease
while #out < 5 * n + 1 do
  local popped = redis.call('ZPOPMIN', KEYS[1], n - (#out - 1) / 5)
  if #popped == 0 then break end
  for i = 1, #popped, 2 do
    local id = popped[i]
    local h = prefix .. id
    local f = redis.call('HMGET', h, 'state', 'spec', 'hb')
    if f[1] == 'waiting' then
      local runs = redis.call('HINCRBY', h, 'runs', 1)
      local token = runs .. '@' .. worker
      redis.call('HSET', h, 'state', 'active', 'token', token, 'worker', worker, 'started', now)
      redis.call('ZADD', KEYS[3], deadline, id)
      out[#out + 1] = id
      out[#out + 1] = f[2]
      out[#out + 1] = runs
      out[#out + 1] = tonumber(f[3])
      out[#out + 1] = token
    end
  end
end
return out
