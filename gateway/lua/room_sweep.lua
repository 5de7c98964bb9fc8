-- room_sweep.lua: the rooms index side of deleting rooms nobody used for a while, or one
-- named room now.
-- KEYS[1] rooms hash, KEYS[2] names zset, KEYS[3] popularity zset, KEYS[4] activity zset
-- (room -> last use, ms). All four share one hash slot; a room's own keys (history, seq,
-- members ...) live in the room's slot, so deleting a room takes three steps: this script
-- lists candidates, room_idle.lua tells whether one is really idle, this script unlists it
-- (only if nobody used it meanwhile), and the caller then deletes the room's keys.
-- ARGV[1] mode:
--   "candidates": ARGV[2] idle time in ms, ARGV[3] most rooms looked at (1-1000), ARGV[4..]
--                 rooms that never expire (the default rooms: their use is moved forward).
--                 Returns {now, room...}: the rooms whose last use is older than now - idle.
--   "unlist":     ARGV[2] room, ARGV[3] the use it must still be older than (ms; "": none,
--                 chat-admin delete-room), ARGV[4..] rooms that never expire.
--                 Removes the room from every index. Returns 1 when it did, 0 when the room
--                 does not exist, never expires, or was used since.
-- Only the activity index is walked, never every room.
local mode = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if mode == 'unlist' then
    local room = ARGV[2] or ''
    for i = 4, #ARGV do
        if ARGV[i] == room then
            return 0
        end
    end
    if redis.call('HEXISTS', KEYS[1], room) == 0 then
        return 0
    end
    if ARGV[3] ~= '' then
        local before = tonumber(ARGV[3])
        local used = tonumber(redis.call('ZSCORE', KEYS[4], room))
        if not before or (used and used >= before) then
            return 0
        end
    end
    redis.call('HDEL', KEYS[1], room)
    redis.call('ZREM', KEYS[2], room)
    redis.call('ZREM', KEYS[3], room)
    redis.call('ZREM', KEYS[4], room)
    return 1
end

if mode ~= 'candidates' then
    return redis.error_reply('ERR room_sweep: mode must be candidates or unlist')
end
local idle = tonumber(ARGV[2] or '')
local batch = tonumber(ARGV[3] or '')
if not idle or not batch or batch < 1 or batch > 1000 then
    return redis.error_reply('ERR room_sweep: idle and batch must be integers, batch 1-1000')
end
local keep = {}
for i = 4, #ARGV do
    keep[ARGV[i]] = true
end
local out = {now}
local candidates = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. (now - idle), 'LIMIT', 0,
    batch)
for _, room in ipairs(candidates) do
    if keep[room] then
        redis.call('ZADD', KEYS[4], now, room)
    else
        out[#out + 1] = room
    end
end
return out
