-- presence_add.lua: mark a user present (in a room, or online) through one node.
-- KEYS[1] presence zset (member: user id, score: expiry ms),
-- KEYS[2] holder zset of that user (member: node id, score: expiry ms),
-- KEYS[3] the presence zset's user hash (user id -> user JSON {"id","name","avatar"}, what
-- users.lua lists and presence_reap.lua announces). All three share one hash slot.
-- ARGV[1] user id, ARGV[2] node id, ARGV[3] expiry ms, ARGV[4] now ms, ARGV[5] channel
-- (ARGV[4] "": now is Redis' TIME and ARGV[3] the entry's lifetime in ms, so every
-- node's entries are scored on one clock whatever the nodes' clocks say)
-- ("" publishes nothing), ARGV[6] event JSON, ARGV[7] user JSON, ARGV[8] the publish command
-- (PUBLISH, or SPUBLISH for a channel in this script's slot).
-- Returns {appeared, present}: appeared is 1 when the user was absent (the event was
-- published), 0 otherwise; present is the number of live entries now (the caller keeps the
-- room popularity index, which lives in another slot). Calling it again refreshes the
-- expiries; an entry that expired but was not reaped yet still counts as present, so a
-- refresh never sends a second join.
local function redis_now()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local expiry = #ARGV[3] <= 15 and ARGV[3]:match('^%d+$') and tonumber(ARGV[3])
if ARGV[8] ~= 'PUBLISH' and ARGV[8] ~= 'SPUBLISH' then
    return redis.error_reply('ERR presence_add: ARGV[8] must be PUBLISH or SPUBLISH')
end
local now
if ARGV[4] == '' then
    now = redis_now()
    if expiry then
        expiry = now + expiry
    end
else
    now = #ARGV[4] <= 15 and ARGV[4]:match('^%d+$') and tonumber(ARGV[4])
end
if not expiry or not now then
    return redis.error_reply('ERR presence_add: expiry and now must be integers')
end
local exp_s, now_s = string.format('%d', expiry), string.format('%d', now)

redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. now_s)
redis.call('ZADD', KEYS[2], exp_s, ARGV[2])
-- The holder key outlives its last refresh by a minute, so a dead node's keys go away.
local ttl = expiry - now
if ttl < 0 then
    ttl = 0
end
redis.call('PEXPIRE', KEYS[2], string.format('%d', ttl + 60000))

redis.call('HSET', KEYS[3], ARGV[1], ARGV[7])
local appeared = 0
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
    redis.call('ZADD', KEYS[1], 'GT', exp_s, ARGV[1])
else
    redis.call('ZADD', KEYS[1], exp_s, ARGV[1])
    if ARGV[5] ~= '' then
        redis.call(ARGV[8], ARGV[5], ARGV[6])
    end
    appeared = 1
end
return {appeared, redis.call('ZCOUNT', KEYS[1], now_s, '+inf')}
