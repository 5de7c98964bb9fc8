-- users.lua: every online user, cluster-wide, at most 10000.
-- KEYS[1] online zset (score: expiry ms). ARGV[1] now ms ("": Redis' TIME), ARGV[2] + uid + ARGV[3] user hash.
-- Returns a flat array {id1, name1, avatar1, id2, ...}, in expiry order; a missing name is
-- the user id, a missing avatar "".
local function redis_now()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local now_s = ARGV[1]
if now_s == '' then
    now_s = string.format('%d', redis_now())
elseif not (#now_s <= 15 and now_s:match('^%d+$')) then
    return redis.error_reply('ERR users: now must be an integer')
end

local ids = redis.call('ZRANGEBYSCORE', KEYS[1], now_s, '+inf', 'LIMIT', '0', '10000')
local out = {}
for _, uid in ipairs(ids) do
    local fields = redis.call('HMGET', ARGV[2] .. uid .. ARGV[3], 'name', 'avatar')
    out[#out + 1] = uid
    out[#out + 1] = fields[1] or uid
    out[#out + 1] = fields[2] or ''
end
return out
