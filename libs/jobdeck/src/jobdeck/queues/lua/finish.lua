-- Finish a batch of runs of one queue: each run's buffered events and final event, and its
-- next state, only if the run still owns the job (its token). A run that lost its lease, or
-- a finish replayed after a lost reply, changes nothing and writes nothing.
-- KEYS: ready set, delayed set, active set, event stream, wake list
-- ARGV: now ms, stream maxlen, job key prefix, keep ms, priority weight, wake bound, then for
--       each run: id, token, outcome ('done', 'retry' or 'handback'), due ms, event count,
--       events...
-- Returns one 1 (applied) or 0 (not the owner: ignored) per run.
local now, maxlen, prefix = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local weight = tonumber(ARGV[5])
local out, woken, i = {}, 0, 7
while i <= #ARGV do
  local id, token, outcome, due = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local count = tonumber(ARGV[i + 4])
  local h = prefix .. id
  if redis.call('HGET', h, 'token') == token then
    for e = i + 5, i + 4 + count do
      redis.call('XADD', KEYS[4], 'MAXLEN', '~', maxlen, '*', 'e', ARGV[e])
    end
    redis.call('ZREM', KEYS[3], id)
    redis.call('HDEL', h, 'token', 'abort')
    if outcome == 'done' then
      redis.call('HSET', h, 'state', 'done')
      redis.call('PEXPIRE', h, ARGV[4])
    elseif outcome == 'handback' then
      redis.call('HINCRBY', h, 'hb', 1)
      redis.call('HSET', h, 'state', 'waiting')
      redis.call('ZADD', KEYS[1], redis.call('HGET', h, 'score'), id)
      woken = woken + 1
    elseif due > now then
      redis.call('HSET', h, 'state', 'delayed')
      redis.call('ZADD', KEYS[2], due, id)
      woken = woken + 1
    else
      local score = string.format('%.0f', due - tonumber(redis.call('HGET', h, 'prio')) * weight)
      redis.call('HSET', h, 'state', 'waiting', 'score', score)
      redis.call('ZADD', KEYS[1], score, id)
      woken = woken + 1
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
  i = i + 5 + count
end
if woken > 0 then
  local bound = tonumber(ARGV[6])
  for _ = 1, math.min(woken, bound) do redis.call('LPUSH', KEYS[5], '1') end
  redis.call('LTRIM', KEYS[5], 0, bound - 1)
end
return out
