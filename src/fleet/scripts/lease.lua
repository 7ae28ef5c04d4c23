-- lease: take the refresh lease of one account (SET NX PX) if it is still at the generation the
-- caller saw and enabled (a disabled account is not refreshed: its refresh failed, or an
-- operator said so). Its owner asking again (a retry after a timeout) gets it again, TTL renewed.
-- KEYS: 1 ids, 2 gen, 3 lease, 4 dis    ARGV: 1 slot, 2 owner, 3 ttl ms, 4 generation seen
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'gone'} end
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 1 then return {'disabled'} end
local g = redis.call('HGET', KEYS[2], ARGV[1])
if g ~= ARGV[4] then return {'stale', g} end
if redis.call('SET', KEYS[3], ARGV[2], 'NX', 'PX', ARGV[3]) then return {'acquired', g} end
if redis.call('GET', KEYS[3]) == ARGV[2] then
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
  return {'acquired', g}
end
return {'held', g}
