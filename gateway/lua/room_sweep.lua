-- room_sweep.lua: delete rooms nobody used for a while, a few per call; or one named room now.
-- KEYS[1] rooms hash, KEYS[2] names zset, KEYS[3] popularity zset, KEYS[4] activity zset
-- (room -> last use, ms).
-- ARGV[1] idle time in ms, ARGV[2] most rooms looked at per call, ARGV[3] + room +
-- ARGV[4] the room's key prefix ("chat:room:{" .. room .. "}:"), ARGV[5..] rooms that
-- never expire (the default rooms).
-- A candidate whose last use is older than the idle time is kept (and its use moved
-- forward) while someone is present in it or its newest message is younger; otherwise
-- its history, seq, members, their holder sets and reactions go, and so does its entry in
-- every index.
-- With ARGV[1] "delete", ARGV[2] is one room name (chat-admin delete-room): that room goes
-- the same way at once, whoever is in it, unless it never expires or does not exist.
-- Returns the names deleted. Only the activity index is walked, never every room.
local keep = {}
for i = 5, #ARGV do
    keep[ARGV[i]] = true
end

local function delete(room, base)
    for _, uid in ipairs(redis.call('ZRANGE', base .. 'members', 0, -1)) do
        redis.call('DEL', base .. 'holders:' .. uid)
    end
    redis.call('DEL', base .. 'history', base .. 'seq', base .. 'members', base .. 'reactions')
    redis.call('HDEL', KEYS[1], room)
    redis.call('ZREM', KEYS[2], room)
    redis.call('ZREM', KEYS[3], room)
    redis.call('ZREM', KEYS[4], room)
end

if ARGV[1] == 'delete' then
    local room = ARGV[2] or ''
    if keep[room] or redis.call('HEXISTS', KEYS[1], room) == 0 then
        return {}
    end
    delete(room, ARGV[3] .. room .. ARGV[4])
    return {room}
end

local idle = tonumber(ARGV[1] or '')
local batch = tonumber(ARGV[2] or '')
if not idle or not batch or batch < 1 or batch > 1000 then
    return redis.error_reply('ERR room_sweep: idle and batch must be integers, batch 1-1000')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local deleted = {}
local candidates = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. (now - idle), 'LIMIT', 0,
    batch)
for _, room in ipairs(candidates) do
    local base = ARGV[3] .. room .. ARGV[4]
    local last = 0
    local newest = redis.call('LINDEX', base .. 'history', -1)
    if newest then
        last = tonumber(string.match(newest, '"ts":(%d+)')) or 0
    end
    if keep[room] or redis.call('ZCOUNT', base .. 'members', now, '+inf') > 0 then
        redis.call('ZADD', KEYS[4], now, room)
    elseif last > now - idle then
        redis.call('ZADD', KEYS[4], last, room)
    else
        delete(room, base)
        deleted[#deleted + 1] = room
    end
end
return deleted
