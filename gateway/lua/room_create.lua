-- room_create.lua: create a room once and announce it, within the room cap and the
-- creator's quota.
-- KEYS[1] rooms hash, KEYS[2] names zset (score 0, the index rooms.lua pages by name),
-- KEYS[3] activity zset (room -> last use, ms: the room sweeper's index), KEYS[4] the
-- creator's creations counter for this hour (a string with a TTL).
-- ARGV[1] room name, ARGV[2] meta JSON, ARGV[3] channel ("" publishes nothing),
-- ARGV[4] event JSON, ARGV[5] most rooms there may be (0: no cap), ARGV[6] rooms one
-- creator may create per hour (0: no quota), ARGV[7] the publish command (PUBLISH: the
-- channel is chat:all, in no slot).
-- Returns 1 when the room was created (the event was published), 0 when it existed
-- (its use is recorded), -1 at the room cap, -2 past the creator's quota.
local cap = tonumber(ARGV[5] or '0')
local quota = tonumber(ARGV[6] or '0')
if not cap or not quota then
    return redis.error_reply('ERR room_create: cap and quota must be integers')
end
if ARGV[7] ~= 'PUBLISH' and ARGV[7] ~= 'SPUBLISH' then
    return redis.error_reply('ERR room_create: ARGV[7] must be PUBLISH or SPUBLISH')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
    redis.call('ZADD', KEYS[2], 0, ARGV[1])
    redis.call('ZADD', KEYS[3], now, ARGV[1])
    return 0
end
if cap > 0 and redis.call('HLEN', KEYS[1]) >= cap then
    return -1
end
if quota > 0 and tonumber(redis.call('GET', KEYS[4]) or '0') >= quota then
    return -2
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('ZADD', KEYS[3], now, ARGV[1])
if quota > 0 then
    redis.call('INCR', KEYS[4])
    redis.call('EXPIRE', KEYS[4], 3600)
end
if ARGV[3] ~= '' then
    redis.call(ARGV[7], ARGV[3], ARGV[4])
end
return 1
