-- commit: store a refreshed token, fenced by the generation it was refreshed from:
-- if gen == g then set token, gen = g + 1. A stale commit is rejected and says so. The same
-- owner committing the same generation again (a retry after a timeout) is told it committed.
-- KEYS: 1 ids, 2 tok, 3 gen, 4 exp, 5 lease, 6 by
-- ARGV: 1 slot, 2 generation g, 3 token, 4 expiry ms ('' = none), 5 owner
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'gone'} end
local cur = redis.call('HGET', KEYS[3], ARGV[1])
local mark = ARGV[5] .. '@' .. ARGV[2]
if cur == ARGV[2] then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
  if ARGV[4] == '' then
    redis.call('HDEL', KEYS[4], ARGV[1])
  else
    redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
  end
  local g = redis.call('HINCRBY', KEYS[3], ARGV[1], 1)
  redis.call('HSET', KEYS[6], ARGV[1], mark)
  if redis.call('GET', KEYS[5]) == ARGV[5] then redis.call('DEL', KEYS[5]) end
  return {'committed', g}
end
if redis.call('HGET', KEYS[6], ARGV[1]) == mark then return {'committed', cur} end
return {'stale', cur}
