-- presence_expired.lua: the users whose presence entry expired, for presence_reap.lua.
-- KEYS[1] presence zset (member: user id, score: expiry ms).
-- ARGV[1] now ms ("": Redis' TIME), ARGV[2] most ids returned (1-10000).
-- Returns {present, uid...}: present is the number of live entries, then the expired ids,
-- oldest expiry first. Reading them is a step of its own because presence_reap.lua must be
-- given every holder key it touches in KEYS (Redis Cluster routes and checks scripts by
-- their declared keys), and those keys depend on the ids.
local function redis_now()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local now_s = ARGV[1]
if now_s == '' then
    now_s = string.format('%d', redis_now())
elseif not (#now_s <= 15 and now_s:match('^%d+$')) then
    return redis.error_reply('ERR presence_expired: now must be an integer')
end
local limit = tonumber(ARGV[2] or '')
if not limit or limit < 1 or limit > 10000 or limit ~= math.floor(limit) then
    return redis.error_reply('ERR presence_expired: limit must be an integer 1-10000')
end
local out = {redis.call('ZCOUNT', KEYS[1], now_s, '+inf')}
for _, uid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now_s, 'LIMIT', '0',
    string.format('%d', limit))) do
    out[#out + 1] = uid
end
return out
