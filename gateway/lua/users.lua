-- users.lua: the users present in a presence zset (online, or a room's members), at most
-- 10000.
-- KEYS[1] presence zset (score: expiry ms), KEYS[2] its user hash (user id -> user JSON
-- {"id","name","avatar"}, kept by presence_add.lua). ARGV[1] now ms ("": Redis' TIME).
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
-- HMGET in chunks: unpack() of more than a few thousand values overflows Lua's C stack.
local users = {}
for first = 1, #ids, 1000 do
    local chunk = redis.call('HMGET', KEYS[2], unpack(ids, first, math.min(first + 999, #ids)))
    for k = 1, #chunk do
        users[first + k - 1] = chunk[k]
    end
end
for i, uid in ipairs(ids) do
    local name, avatar = uid, ''
    local ok, user = pcall(cjson.decode, users[i] or '')
    if ok and type(user) == 'table' then
        if type(user.name) == 'string' then
            name = user.name
        end
        if type(user.avatar) == 'string' then
            avatar = user.avatar
        end
    end
    out[#out + 1] = uid
    out[#out + 1] = name
    out[#out + 1] = avatar
end
return out
