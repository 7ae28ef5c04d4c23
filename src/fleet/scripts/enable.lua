-- enable: clear one account's disabled flag (idempotent; a deleted account stays deleted).
-- KEYS: 1 ids, 2 dis    ARGV: 1 slot
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return {'gone'} end
redis.call('HDEL', KEYS[2], ARGV[1])
return {'done'}
