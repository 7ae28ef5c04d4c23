-- ban: keep max(old, new) as the series' ban deadline of one account.
-- KEYS: 1 ids, 2 bans    ARGV: 1 slot, 2 series, 3 until (epoch ms)
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'gone'} end
local f = ARGV[1] .. '|' .. ARGV[2]
local old = redis.call('HGET', KEYS[2], f)
if old and tonumber(old) >= tonumber(ARGV[3]) then return {'done', old} end
redis.call('HSET', KEYS[2], f, ARGV[3])
return {'done', ARGV[3]}
