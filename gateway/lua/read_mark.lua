-- read_mark.lua: move a user's read marker of one conversation forward and tell their
-- other connections.
-- KEYS[1] the user's read hash (field -> seq).
-- ARGV[1] field ("room:<name>" or "dm:<peer id>"), ARGV[2] seq read (integer >= 0),
-- ARGV[3] TTL seconds of the hash (restarted on every change), ARGV[4] channel,
-- ARGV[5] event JSON head ending right before the seq value (the script closes it),
-- ARGV[6] the conversation's current seq (integer >= 0), read by the caller just before:
-- the conversation's seq key lives in the conversation's hash slot, not the user's.
-- ARGV[7] the publish command (PUBLISH, or SPUBLISH: the channel is the user's, in KEYS[1]'s slot).
-- The seq is capped at the conversation's current seq (nobody can have read further), and
-- the marker never moves back, unless it is above that seq: then the conversation started
-- over (Redis lost its data) and the marker follows it down.
-- Returns {stored seq, changed (0/1)}; the event is published only when it changed.
for _, i in ipairs({2, 3, 6}) do
    local v = ARGV[i]
    if not (v and #v <= 15 and v:match('^%d+$')) then
        return redis.error_reply('ERR read_mark: ARGV[' .. i .. '] must be an integer')
    end
end
if ARGV[7] ~= 'PUBLISH' and ARGV[7] ~= 'SPUBLISH' then
    return redis.error_reply('ERR read_mark: ARGV[7] must be PUBLISH or SPUBLISH')
end
local want, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local current = tonumber(ARGV[6])
if want > current then
    want = current
end
local prev = tonumber(redis.call('HGET', KEYS[1], ARGV[1])) or 0
if want <= prev and prev <= current then
    return {prev, 0}
end
if want == 0 then
    redis.call('HDEL', KEYS[1], ARGV[1])
else
    redis.call('HSET', KEYS[1], ARGV[1], string.format('%d', want))
end
if ttl > 0 then
    redis.call('EXPIRE', KEYS[1], string.format('%d', ttl))
end
redis.call(ARGV[7], ARGV[4], ARGV[5] .. string.format('%d', want) .. '}')
return {want, 1}
