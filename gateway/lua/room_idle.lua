-- room_idle.lua: whether a room the sweeper found unused (room_sweep.lua) may go.
-- KEYS[1] history (list), KEYS[2] members zset (score: expiry ms).
-- ARGV[1] idle time in ms.
-- Returns {state, ts, uid...}: "busy" with Redis' now when someone is present, "recent"
-- with the newest message's ts when that is younger than the idle time (the caller moves the
-- room's last use to ts), else "idle" with 0 and every member id still listed, expired or
-- not, whose holder sets the caller deletes along with the room's keys.
local idle = tonumber(ARGV[1] or '')
if not idle then
    return redis.error_reply('ERR room_idle: idle must be an integer')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZCOUNT', KEYS[2], now, '+inf') > 0 then
    return {'busy', now}
end
local newest = redis.call('LINDEX', KEYS[1], -1)
local last = newest and tonumber(string.match(newest, '"ts":(%d+)')) or 0
if last > now - idle then
    return {'recent', last}
end
local out = {'idle', 0}
for _, uid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    out[#out + 1] = uid
end
return out
