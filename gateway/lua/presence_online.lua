-- presence_online.lua: whether a user's presence entry is live.
-- KEYS[1] presence zset (member: user id, score: expiry ms). ARGV[1] user id.
-- Returns 1 when the entry's expiry is not before Redis' TIME, else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if score and score >= now then
    return 1
end
return 0
