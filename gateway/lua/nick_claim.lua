-- nick_claim.lua: claim a nickname unless someone else holds it.
-- KEYS[1] nick key (string: holder's user id).
-- ARGV[1] user id, ARGV[2] TTL seconds, ARGV[3] the holder the caller found offline ("":
-- none), whose claim may be taken over.
-- Returns "" when claimed (KEYS[1] = uid with the TTL), or the holder's id when another
-- user holds it. Whether that holder is online decides (presence_online.lua, on the online
-- set, which lives in another hash slot): the caller asks, and calls again with the holder
-- in ARGV[3]. A claim that changed hands meanwhile is not taken over: two logins racing for
-- one nickname are serialized here, and one wins.
local ttl = #ARGV[2] <= 15 and ARGV[2]:match('^%d+$') and tonumber(ARGV[2])
if not ttl or ttl < 1 then
    return redis.error_reply('ERR nick_claim: ttl must be an integer >= 1')
end

local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] and holder ~= ARGV[3] then
    return holder
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ''
