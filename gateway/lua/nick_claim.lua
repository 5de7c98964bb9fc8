-- nick_claim.lua: claim a nickname unless another online user holds it.
-- KEYS[1] nick key (string: holder's user id), KEYS[2] online zset (score: expiry ms).
-- ARGV[1] user id, ARGV[2] now ms ("": Redis' TIME), ARGV[3] TTL seconds.
-- Returns "" when claimed (KEYS[1] = uid with the TTL), or the holder's id on conflict.
-- Whether the holder is online decides, not whether the key exists.
local function redis_now()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local now
if ARGV[2] == '' then
    now = redis_now()
else
    now = #ARGV[2] <= 15 and ARGV[2]:match('^%d+$') and tonumber(ARGV[2])
end
local ttl = #ARGV[3] <= 15 and ARGV[3]:match('^%d+$') and tonumber(ARGV[3])
if not now or not ttl or ttl < 1 then
    return redis.error_reply('ERR nick_claim: now must be an integer and ttl an integer >= 1')
end

local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
    local score = tonumber(redis.call('ZSCORE', KEYS[2], holder))
    if score and score >= now then
        return holder
    end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return ''
