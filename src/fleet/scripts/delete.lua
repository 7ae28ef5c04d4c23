-- delete: remove one account from every hash (HDEL); its slot is never reused, and every later
-- write to it answers 'gone', so no stale writer brings it back.
-- KEYS: 1 ids, 2 tok, 3 gen, 4 exp, 5 dis, 6 by, 7 bans, 8 lease
-- ARGV: 1 slot, 2.. the series whose bans go with it
local existed = redis.call('HDEL', KEYS[1], ARGV[1])
for i = 2, 6 do redis.call('HDEL', KEYS[i], ARGV[1]) end
for i = 2, #ARGV do redis.call('HDEL', KEYS[7], ARGV[1] .. '|' .. ARGV[i]) end
redis.call('DEL', KEYS[8])
return existed
