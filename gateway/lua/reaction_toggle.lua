-- reaction_toggle.lua: add or take back one user's reaction to a stored message.
-- KEYS[1] history (list, oldest first, consecutive seqs), KEYS[2] reactions hash:
-- field seq -> JSON {"<emoji>": ["<user id>", ...]} (no empty lists, no empty objects).
-- ARGV[1] seq, ARGV[2] user id, ARGV[3] emoji (UTF-8), ARGV[4] the emoji as a JSON string
-- literal (for the event), ARGV[5] most distinct emoji on one message, ARGV[6] most
-- reactions (user, emoji pairs) on one message, ARGV[7] the publish command (PUBLISH,
-- SPUBLISH, or "": return the events instead), ARGV[8..] pairs of channel and event JSON
-- head (ending after the seq value; the script adds emoji, user and on).
-- Fields of messages no longer in history are dropped whenever the hash holds more fields
-- than history holds messages, so it stays as small as the history.
-- Returns {status, on}: status "ok" (on 1 added, 0 removed, event published; with ARGV[7]
-- "": {"ok", on, channel, event, ...}), "not_found"
-- (not in history, or deleted), "limit" (a cap above would be passed).
for _, i in ipairs({1, 5, 6}) do
    local v = ARGV[i]
    if not (v and #v <= 15 and v:match('^%d+$')) then
        return redis.error_reply('ERR reaction_toggle: ARGV[' .. i .. '] must be an integer')
    end
end
local pub = ARGV[7]
if pub ~= 'PUBLISH' and pub ~= 'SPUBLISH' and pub ~= '' then
    return redis.error_reply('ERR reaction_toggle: ARGV[7] must be PUBLISH, SPUBLISH or ""')
end
if #ARGV < 9 or #ARGV % 2 ~= 1 then
    return redis.error_reply('ERR reaction_toggle: channel and event head come in pairs')
end
local seq, max_emoji, max_total = tonumber(ARGV[1]), tonumber(ARGV[5]), tonumber(ARGV[6])
local uid, emoji = ARGV[2], ARGV[3]

local function seq_of(msg)
    return tonumber(string.match(msg, '"seq":(%d+)')) or 0
end
local n = redis.call('LLEN', KEYS[1])
if n == 0 or seq < 1 then
    return {'not_found', 0}
end
local first = seq_of(redis.call('LINDEX', KEYS[1], 0))
local idx = seq - first
local msg = (idx >= 0 and idx < n) and redis.call('LINDEX', KEYS[1], idx) or nil
if not msg or seq_of(msg) ~= seq then
    msg = nil
    for _, m in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
        if seq_of(m) == seq then
            msg = m
            break
        end
    end
end
if not msg or string.find(msg, ',"deleted":true,"deleted_ts":%d+}$') then
    return {'not_found', 0}
end

local field = string.format('%d', seq)
local raw = redis.call('HGET', KEYS[2], field)
local map = {}
if raw then
    local ok, decoded = pcall(cjson.decode, raw)
    if ok and type(decoded) == 'table' then
        map = decoded
    end
end
local kinds, total = 0, 0
for _, users in pairs(map) do
    kinds = kinds + 1
    total = total + #users
end
local users = map[emoji]
local on = 1
if users then
    for i, u in ipairs(users) do
        if u == uid then
            table.remove(users, i)
            on = 0
            break
        end
    end
end
if on == 1 then
    if (not users and kinds >= max_emoji) or total >= max_total then
        return {'limit', 0}
    end
    users = users or {}
    users[#users + 1] = uid
    map[emoji] = users
elseif #users == 0 then
    map[emoji] = nil
end
if next(map) == nil then
    redis.call('HDEL', KEYS[2], field)
else
    redis.call('HSET', KEYS[2], field, cjson.encode(map))
end
if redis.call('HLEN', KEYS[2]) > n then
    for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
        if (tonumber(f) or 0) < first then
            redis.call('HDEL', KEYS[2], f)
        end
    end
end
local tail = ',"emoji":' .. ARGV[4] .. ',"user":"' .. uid .. '","on":' ..
                 (on == 1 and 'true' or 'false') .. '}'
local out = {'ok', on}
for i = 8, #ARGV, 2 do
    if pub == '' then
        out[#out + 1] = ARGV[i]
        out[#out + 1] = ARGV[i + 1] .. tail
    else
        redis.call(pub, ARGV[i], ARGV[i + 1] .. tail)
    end
end
return out
