-- Cancel a job: a queued one at once (with its `cancelled` event), a running one by asking
-- its worker (which writes the event, naming who asked).
-- KEYS: job hash, ready set, delayed set, event stream
-- ARGV: id, event, stream maxlen, control channel, queue, by ('' = nobody named), keep ms
-- Returns 'cancelled', 'aborting' or 'gone'.
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'active' then
  redis.call('HSET', KEYS[1], 'abort', ARGV[6])
  redis.call('PUBLISH', ARGV[4], 'abort:' .. ARGV[5])
  return 'aborting'
end
if state == 'waiting' or state == 'delayed' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HSET', KEYS[1], 'state', 'done')
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[2])
  return 'cancelled'
end
return 'gone'
