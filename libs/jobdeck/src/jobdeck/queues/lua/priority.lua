-- Change the priority of a job that has not started: a waiting job moves in the ready set
-- to where that priority ranks it (keeping its place in time among equals), a delayed one
-- takes it when it comes due; its spec carries it on for a later retry.
-- KEYS: job hash, ready set
-- ARGV: id, new priority, priority weight
-- Returns 'changed', or the job's state when it cannot change ('gone' if Redis lost it).
local f = redis.call('HMGET', KEYS[1], 'state', 'prio', 'spec', 'score')
if not f[1] then return 'gone' end
if f[1] ~= 'waiting' and f[1] ~= 'delayed' then return f[1] end
local spec = cmsgpack.unpack(f[3])
spec['priority'] = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'prio', ARGV[2], 'spec', cmsgpack.pack(spec))
if f[1] == 'waiting' then
  local shift = (tonumber(f[2]) - tonumber(ARGV[2])) * tonumber(ARGV[3])
  local score = string.format('%.0f', tonumber(f[4]) + shift)
  redis.call('HSET', KEYS[1], 'score', score)
  redis.call('ZADD', KEYS[2], 'XX', score, ARGV[1])
end
return 'changed'
