-- presence_reap.lua: remove users whose presence entry expired, at most 2000 per call
-- (the caller calls again while a call returns 2000: it goes on until none is left).
-- KEYS[1] presence zset (member: user id, score: expiry ms).
-- ARGV[1] now ms, ARGV[2] + uid + ARGV[3] holder zset key, ARGV[4] channel ("" publishes
-- nothing), ARGV[5] event head, ARGV[6] event tail (event = head .. user JSON .. tail),
-- ARGV[7] + uid + ARGV[8] user hash key (fields name, avatar), ARGV[9] popularity zset
-- ("" for none) and ARGV[10] room name: each reaped user takes one off the room's score.
-- Returns the list of reaped user ids. Many nodes run this concurrently; the script is
-- atomic, so exactly one of them removes (and announces) each user.
-- The user JSON is {"id","name","avatar"} in that order: each value goes through
-- cjson.encode for escaping, the object is concatenated so the key order is fixed.
-- A missing name falls back to the user id, a missing or empty avatar is null.
local function redis_now()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- ARGV[1] "": now is Redis' TIME (one clock for every node).
local now_s = ARGV[1]
if now_s == '' then
    now_s = string.format('%d', redis_now())
elseif not (#now_s <= 15 and now_s:match('^%d+$')) then
    return redis.error_reply('ERR presence_reap: now must be an integer')
end

local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now_s, 'LIMIT', '0', '2000')
local reaped = {}
for _, uid in ipairs(expired) do
    local holder = ARGV[2] .. uid .. ARGV[3]
    redis.call('ZREMRANGEBYSCORE', holder, '-inf', '(' .. now_s)
    local live = redis.call('ZRANGE', holder, '-1', '-1', 'WITHSCORES')
    if live[2] then
        -- Another node still refreshes this user: adopt its expiry instead.
        redis.call('ZADD', KEYS[1], live[2], uid)
    else
        redis.call('DEL', holder)
        redis.call('ZREM', KEYS[1], uid)
        if ARGV[9] and ARGV[9] ~= '' and
            tonumber(redis.call('ZINCRBY', ARGV[9], -1, ARGV[10])) <= 0 then
            redis.call('ZREM', ARGV[9], ARGV[10])
        end
        local fields = redis.call('HMGET', ARGV[7] .. uid .. ARGV[8], 'name', 'avatar')
        local name = fields[1] or uid
        local avatar = 'null'
        if fields[2] and fields[2] ~= '' then
            avatar = cjson.encode(fields[2])
        end
        local user = '{"id":' .. cjson.encode(uid) .. ',"name":' .. cjson.encode(name) ..
                         ',"avatar":' .. avatar .. '}'
        if ARGV[4] ~= '' then
            redis.call('PUBLISH', ARGV[4], ARGV[5] .. user .. ARGV[6])
        end
        reaped[#reaped + 1] = uid
    end
end
return reaped
