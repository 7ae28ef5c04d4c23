-- snapshot: every account as it stands, in slot order, and every ban kept.
-- KEYS: 1 meta, 2 ids, 3 tok, 4 gen, 5 exp, 6 dis, 7 bans
-- Returns {rows, bans}: rows of slot, id, token, generation, expiry ('' = none), disabled (0/1);
-- bans as field, until pairs.
local next_slot = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
local rows = {}
for slot = 0, next_slot - 1 do
  local f = tostring(slot)
  local id = redis.call('HGET', KEYS[2], f)
  if id then
    rows[#rows + 1] = {slot, id, redis.call('HGET', KEYS[3], f), redis.call('HGET', KEYS[4], f),
                       redis.call('HGET', KEYS[5], f) or '', redis.call('HEXISTS', KEYS[6], f)}
  end
end
return {rows, redis.call('HGETALL', KEYS[7])}
