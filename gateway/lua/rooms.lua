-- rooms.lua: a bounded list of rooms with their meta JSON.
-- KEYS[1] rooms hash (name -> meta JSON), KEYS[2] names zset (every room, score 0:
-- ordered by name, byte order), KEYS[3] popularity zset (room -> users present, kept by the
-- gateways from the presence scripts' counts). All three share one hash slot.
-- ARGV[1] now ms ("": Redis' TIME), ARGV[2] mode, ARGV[3] limit (1-1000), then:
--   "page":    ARGV[4] name prefix ("" for all), ARGV[5] list names after this one ("": from
--              the start): rooms by name;
--   "welcome": ARGV[4..] the default rooms: those first, then the others by the number of
--              users present, most first.
-- Returns {more, now, name1, meta1, name2, meta2, ...}: more is 1 when rooms were left out,
-- now the time the caller counts each room's live members at (ZCOUNT of its members zset
-- from now: that zset lives in the room's own slot, out of this script's reach).
-- Reads at most limit + 1 rooms, whatever the total; the names index is rebuilt from the
-- hash when their sizes differ (rooms created before the index existed).
local function redis_now()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local now_s = ARGV[1]
if now_s == '' then
    now_s = string.format('%d', redis_now())
elseif not (#now_s <= 15 and now_s:match('^%d+$')) then
    return redis.error_reply('ERR rooms: now must be an integer')
end
local limit = tonumber(ARGV[3] or '')
if not limit or limit < 1 or limit > 1000 or limit ~= math.floor(limit) then
    return redis.error_reply('ERR rooms: limit must be an integer 1-1000')
end
if ARGV[2] ~= 'page' and ARGV[2] ~= 'welcome' then
    return redis.error_reply('ERR rooms: mode must be page or welcome')
end

if redis.call('ZCARD', KEYS[2]) ~= redis.call('HLEN', KEYS[1]) then
    local cursor = '0'
    repeat
        local r = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', 1000)
        cursor = r[1]
        for i = 1, #r[2], 2 do
            redis.call('ZADD', KEYS[2], 0, r[2][i])
        end
    until cursor == '0'
end

local out = {0, tonumber(now_s)}
local listed = 0
local function add(name)
    local meta = redis.call('HGET', KEYS[1], name)
    if not meta then
        return
    end
    out[#out + 1] = name
    out[#out + 1] = meta
    listed = listed + 1
end

if ARGV[2] == 'page' then
    local q, after = ARGV[4] or '', ARGV[5] or ''
    local min, max = '-', '+'
    if q ~= '' then
        min, max = '[' .. q, '[' .. q .. '\255'
    end
    if after ~= '' and (q == '' or after >= q) then
        min = '(' .. after
    end
    local names = redis.call('ZRANGEBYLEX', KEYS[2], min, max, 'LIMIT', 0, limit + 1)
    for i = 1, math.min(#names, limit) do
        add(names[i])
    end
    if #names > limit then
        out[1] = 1
    end
    return out
end

local seen = {}
for i = 4, #ARGV do
    if listed < limit then
        add(ARGV[i])
        seen[ARGV[i]] = true
    end
end
local want = limit - listed
if want > 0 then
    local popular = redis.call('ZREVRANGE', KEYS[3], 0, want + #ARGV - 3)
    for _, name in ipairs(popular) do
        if listed < limit and not seen[name] then
            add(name)
            seen[name] = true
        end
    end
end
if redis.call('HLEN', KEYS[1]) > listed then
    out[1] = 1
end
return out
