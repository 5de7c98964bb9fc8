-- rooms.lua: every room with its meta JSON and live member count.
-- KEYS[1] rooms hash (name -> meta JSON). ARGV[1] now ms,
-- ARGV[2] + room + ARGV[3] members zset (score: expiry ms).
-- Returns a flat array {name1, meta1, count1, name2, ...} sorted by name, byte order
-- (Lua's < follows the server's LC_COLLATE, which Redis takes from the environment).
if not (#ARGV[1] <= 15 and ARGV[1]:match('^%d+$')) then
    return redis.error_reply('ERR rooms: now must be an integer')
end

local function bytes_less(a, b)
    local n = math.min(#a, #b)
    for i = 1, n do
        local x, y = string.byte(a, i), string.byte(b, i)
        if x ~= y then
            return x < y
        end
    end
    return #a < #b
end

local all = redis.call('HGETALL', KEYS[1])
local meta = {}
local names = {}
for i = 1, #all, 2 do
    names[#names + 1] = all[i]
    meta[all[i]] = all[i + 1]
end
table.sort(names, bytes_less)

local out = {}
for _, name in ipairs(names) do
    out[#out + 1] = name
    out[#out + 1] = meta[name]
    out[#out + 1] = redis.call('ZCOUNT', ARGV[2] .. name .. ARGV[3], ARGV[1], '+inf')
end
return out
