-- presence_remove.lua: one node gives up its hold on a user's presence.
-- KEYS[1] presence zset, KEYS[2] holder zset of that user, KEYS[3] user hash (as in
-- presence_add.lua).
-- ARGV[1] user id, ARGV[2] node id, ARGV[3] now ms, ARGV[4] channel ("" publishes nothing),
-- ARGV[5] event JSON, ARGV[6] the publish command (PUBLISH, or SPUBLISH for a channel in
-- this script's slot).
-- Returns {left, present}: left is 1 when this was the user's last live holder (the event
-- was published), 0 when another node still holds the user or the user was not present;
-- present is the number of live entries now.
local function redis_now()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
if ARGV[6] ~= 'PUBLISH' and ARGV[6] ~= 'SPUBLISH' then
    return redis.error_reply('ERR presence_remove: ARGV[6] must be PUBLISH or SPUBLISH')
end
-- ARGV[3] "": now is Redis' TIME (one clock for every node).
local now_s = ARGV[3]
if now_s == '' then
    now_s = string.format('%d', redis_now())
elseif not (#now_s <= 15 and now_s:match('^%d+$')) then
    return redis.error_reply('ERR presence_remove: now must be an integer')
end

local function present()
    return redis.call('ZCOUNT', KEYS[1], now_s, '+inf')
end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. now_s)
if redis.call('ZCARD', KEYS[2]) ~= 0 then
    return {0, present()}
end
redis.call('DEL', KEYS[2])
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
    return {0, present()}
end
redis.call('HDEL', KEYS[3], ARGV[1])
if ARGV[4] ~= '' then
    redis.call(ARGV[6], ARGV[4], ARGV[5])
end
return {1, present()}
