-- seed: load accounts from the system of record into an empty pool. A present pool is left as
-- it is, unless add_missing, which adds the accounts whose id it lacks, in new slots.
-- KEYS: 1 meta, 2 ids, 3 tok, 4 gen, 5 exp, 6 dis
-- ARGV: 1 generation base, 2 add_missing ('1' or '0'), then per account:
--       id, token, expiry ms ('' = none), disabled ('1' or '0')
local next_slot = redis.call('HGET', KEYS[1], 'next')
if next_slot and ARGV[2] ~= '1' then return {'present', redis.call('HLEN', KEYS[2])} end
local known = {}
if next_slot then
  for _, id in ipairs(redis.call('HVALS', KEYS[2])) do known[id] = true end
end
local slot = tonumber(next_slot or '0')
local added = 0
for j = 3, #ARGV, 4 do
  local id = ARGV[j]
  if not known[id] then
    local f = tostring(slot)
    redis.call('HSET', KEYS[2], f, id)
    redis.call('HSET', KEYS[3], f, ARGV[j + 1])
    redis.call('HSET', KEYS[4], f, ARGV[1])
    if ARGV[j + 2] ~= '' then redis.call('HSET', KEYS[5], f, ARGV[j + 2]) end
    if ARGV[j + 3] == '1' then redis.call('HSET', KEYS[6], f, '1') end
    known[id] = true
    slot = slot + 1
    added = added + 1
  end
end
redis.call('HSET', KEYS[1], 'next', slot)
if next_slot then return {'added', added} end
return {'seeded', added}
