-- history_range.lua: a page of a history list, read atomically with its seq.
-- KEYS[1] seq (string), KEYS[2] history (list, oldest first, consecutive seqs).
-- ARGV[1] mode:
--   "before": the newest ARGV[3] messages with seq < ARGV[2] (0: no bound);
--   "after":  the oldest ARGV[3] messages with seq > ARGV[2];
--   "since":  a join: "after" ARGV[2] with no count limit when the client's
--             position is still in history (recovered), else "before" 0.
-- ARGV[2] seq bound, ARGV[3] count limit, ARGV[4] byte cap of the messages
-- (0: none): "before" keeps the newest that fit, "after" the oldest.
-- Only the range asked for is read, whatever the list holds, and with a cap
-- only as much of it as fits.
-- Returns {current_seq, more (0/1), recovered (0/1), msg...}: more is 1 when
-- further messages exist in the page's direction.
for i, name in ipairs({'', 'bound', 'limit', 'cap'}) do
    local v = ARGV[i]
    if i > 1 and not (v and #v <= 15 and v:match('^%d+$')) then
        return redis.error_reply('ERR history_range: ' .. name .. ' must be an integer')
    end
end
local mode, bound, limit, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if mode ~= 'before' and mode ~= 'after' and mode ~= 'since' then
    return redis.error_reply('ERR history_range: mode must be before, after or since')
end

local current = tonumber(redis.call('GET', KEYS[1])) or 0
local n = redis.call('LLEN', KEYS[2])
if n == 0 then
    return {current, 0, (mode == 'since' and bound == current) and 1 or 0}
end
local function seq_of(msg)
    return tonumber(string.match(msg, '"seq":(%d+)')) or 0
end
local first = seq_of(redis.call('LINDEX', KEYS[2], 0))

local recovered = 0
if mode == 'since' then
    if bound <= current and bound >= first - 1 then
        mode, limit, recovered = 'after', n, 1
    else
        mode, bound, limit = 'before', 0, 50
    end
end

-- Index of seq s is s - first while the list is consecutive.
local lo, hi
if mode == 'after' then
    lo = math.max(bound + 1 - first, 0)
    hi = math.min(lo + limit - 1, n - 1)
else
    hi = n - 1
    if bound > 0 then
        hi = math.min(bound - 1 - first, n - 1)
    end
    lo = math.max(hi - limit + 1, 0)
end
if hi < lo then
    return {current, 0, recovered}
end
local msgs
if cap > 0 then
    -- One message at a time from the end that is kept, stopping at the cap:
    -- a page of 50 images of 1 MiB then costs Redis the ~4 MiB it returns,
    -- not 50 MiB copied into Lua per join (which let a few joins a second
    -- stall every client of this Redis).
    local step, i, stop = 1, lo, hi
    if mode ~= 'after' then
        step, i, stop = -1, hi, lo
    end
    local got, total = {}, 0
    while true do
        local m = redis.call('LINDEX', KEYS[2], i)
        if not m or (#got > 0 and total + #m > cap) then
            break
        end
        total = total + #m
        got[#got + 1] = m
        if i == stop then
            break
        end
        i = i + step
    end
    if mode == 'after' then
        msgs, hi = got, lo + #got - 1
    else
        msgs, lo = {}, hi - #got + 1
        for k = #got, 1, -1 do
            msgs[#msgs + 1] = got[k]
        end
    end
    if #msgs == 0 then
        return {current, 0, recovered}
    end
else
    msgs = redis.call('LRANGE', KEYS[2], lo, hi)
end
local more = 0
if mode == 'after' then
    if hi < n - 1 then more = 1 end
else
    if lo > 0 then more = 1 end
end
if seq_of(msgs[1]) ~= first + lo or seq_of(msgs[#msgs]) ~= first + hi then
    -- Not consecutive (edited by hand?): fall back to reading it all.
    local all = redis.call('LRANGE', KEYS[2], 0, -1)
    msgs = {}
    for _, m in ipairs(all) do
        local s = seq_of(m)
        if (mode == 'after' and s > bound) or (mode == 'before' and (bound == 0 or s < bound)) then
            msgs[#msgs + 1] = m
        end
    end
    more = #msgs > limit and 1 or 0
    while #msgs > limit do
        table.remove(msgs, mode == 'after' and #msgs or 1)
    end
end

-- The byte cap: keep the oldest ("after") or newest ("before") that fit, and
-- always at least one (a single message is within --max-message).
if cap > 0 then
    local total, keep = 0, 0
    local count = #msgs
    for k = 1, count do
        local m = mode == 'after' and msgs[k] or msgs[count - k + 1]
        if keep > 0 and total + #m > cap then
            break
        end
        total = total + #m
        keep = keep + 1
    end
    if keep < count then
        more = 1
        if mode == 'after' then
            for _ = keep + 1, count do
                table.remove(msgs)
            end
        else
            local kept = {}
            for k = count - keep + 1, count do
                kept[#kept + 1] = msgs[k]
            end
            msgs = kept
        end
    end
end

local out = {current, more, recovered}
for _, m in ipairs(msgs) do
    out[#out + 1] = m
end
return out
