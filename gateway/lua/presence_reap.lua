-- presence_reap.lua: remove users whose presence entry expired (the ids presence_expired.lua
-- listed), announcing each one's leave or offline.
-- KEYS[1] presence zset (member: user id, score: expiry ms), KEYS[2] its user hash (user id
-- -> user JSON), KEYS[3..n] the holder zset of each candidate, in the order of the ids.
-- ARGV[1] now ms ("": Redis' TIME), ARGV[2] channel ("" publishes nothing), ARGV[3] event
-- head, ARGV[4] event tail (event = head .. user JSON .. tail), ARGV[5] the publish command
-- (PUBLISH, or SPUBLISH for a channel in this script's slot), ARGV[6..] the candidate ids,
-- one per holder key.
-- Returns {present, reaped uid...}: present is the number of live entries afterwards. Many
-- nodes run this concurrently with the same candidates; each id is checked again here, and
-- the script is atomic, so exactly one of them removes (and announces) each user, and an
-- id refreshed since it was listed is left alone.
-- A user missing from the user hash is announced as {"id":ID,"name":ID,"avatar":null}.
local function redis_now()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local now_s = ARGV[1]
if now_s == '' then
    now_s = string.format('%d', redis_now())
elseif not (#now_s <= 15 and now_s:match('^%d+$')) then
    return redis.error_reply('ERR presence_reap: now must be an integer')
end
if ARGV[5] ~= 'PUBLISH' and ARGV[5] ~= 'SPUBLISH' then
    return redis.error_reply('ERR presence_reap: ARGV[5] must be PUBLISH or SPUBLISH')
end
if #KEYS - 2 ~= #ARGV - 5 then
    return redis.error_reply('ERR presence_reap: one holder key per id')
end
local now = tonumber(now_s)

local reaped = {}
for i = 6, #ARGV do
    local uid, holder = ARGV[i], KEYS[i - 3]
    local score = tonumber(redis.call('ZSCORE', KEYS[1], uid))
    if score and score < now then
        redis.call('ZREMRANGEBYSCORE', holder, '-inf', '(' .. now_s)
        local live = redis.call('ZRANGE', holder, '-1', '-1', 'WITHSCORES')
        if live[2] then
            -- Another node still refreshes this user: adopt its expiry instead.
            redis.call('ZADD', KEYS[1], live[2], uid)
        else
            redis.call('DEL', holder)
            redis.call('ZREM', KEYS[1], uid)
            local user = redis.call('HGET', KEYS[2], uid)
            redis.call('HDEL', KEYS[2], uid)
            if not user then
                user = '{"id":' .. cjson.encode(uid) .. ',"name":' .. cjson.encode(uid) ..
                           ',"avatar":null}'
            end
            if ARGV[2] ~= '' then
                redis.call(ARGV[5], ARGV[2], ARGV[3] .. user .. ARGV[4])
            end
            reaped[#reaped + 1] = uid
        end
    end
end
local out = {redis.call('ZCOUNT', KEYS[1], now_s, '+inf')}
for _, uid in ipairs(reaped) do
    out[#out + 1] = uid
end
return out
