-- acquire: take the next rotation ticket and map it to an account, in one atomic step.
-- KEYS: 1 meta, 2 ids, 3 tok, 4 gen, 5 exp, 6 dis, 7 bans, 8 ticket
-- ARGV: 1 calls per rotation (K), 2 series ('' = none), 3 ticket to resolve again ('' = take one)
-- Ticket t is served by the (floor(t / K) mod m)-th of the m usable accounts in slot order:
-- enabled, and not banned for the series nor for every series ('*refresh_backoff', a refresh
-- backing off) at the server's own time (TIME). No ticket is taken when nothing is usable, so
-- every turn stays exactly K calls.
local next_slot = redis.call('HGET', KEYS[1], 'next')
if not next_slot then return {'unseeded'} end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local series = ARGV[2]
local usable = {}
for slot = 0, tonumber(next_slot) - 1 do
  local f = tostring(slot)
  if redis.call('HEXISTS', KEYS[2], f) == 1 and redis.call('HEXISTS', KEYS[6], f) == 0 then
    local every = redis.call('HGET', KEYS[7], f .. '|*refresh_backoff')
    local banned = every and tonumber(every) > now_ms
    if not banned and series ~= '' then
      local until_ms = redis.call('HGET', KEYS[7], f .. '|' .. series)
      banned = until_ms and tonumber(until_ms) > now_ms
    end
    if not banned then usable[#usable + 1] = f end
  end
end
if #usable == 0 then return {'exhausted'} end
local ticket
if ARGV[3] == '' then
  ticket = redis.call('INCR', KEYS[8]) - 1
else
  ticket = tonumber(ARGV[3])
end
local k = math.max(tonumber(ARGV[1]), 1)
local f = usable[(math.floor(ticket / k) % #usable) + 1]
return {'ready', ticket, f, redis.call('HGET', KEYS[2], f), redis.call('HGET', KEYS[3], f),
        redis.call('HGET', KEYS[4], f), redis.call('HGET', KEYS[5], f) or ''}
