-- wrk script for bench/run.
--
-- Arguments after `--`:
--   1. an Order template file (one line, `__ID__` where the identifier goes),
--      or "-" for a static request (GET);
--   2. requests per second for this wrk thread, or 0 for "as fast as possible";
--   3. a run id of 8 hex digits, so identifiers are unique across runs;
--   4. "seq" for identifiers without their random first part
--      (00000000-<thread>-4<run>-8<run>-<counter>), which a preloaded data
--      set can name in advance (the OrderResponse run: its __ID__ is also
--      the id of the delivered task it updates).
--
-- With a template every request carries its own identifier
-- (urn:uuid:<8 random>-<thread>-4<run>-8<run>-<counter>), so every POST is a
-- new task; the random first part spreads the identifiers over the index as
-- real consumers' UUIDs would.
-- With a rate, each wrk thread hands out send times on one fixed schedule
-- (interval = 1000 / rate ms): a connection that finishes waits for the next
-- free slot of its thread. With enough connections idle, that is an open
-- loop at a fixed rate; the achieved rate is reported so a reader can check.
--
-- done() prints one JSON line on stdout, after wrk's own text report.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } gpc_timespec;
int clock_gettime(int clk_id, gpc_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("gpc_timespec")
local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local thread_count = 0
function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
end

function init(args)
  local template_path = args[1] or "-"
  local rate = tonumber(args[2] or "0")
  local run = args[3] or "00000000"

  if template_path ~= "-" then
    local f = assert(io.open(template_path, "r"))
    local template = f:read("*l")
    f:close()
    assert(template:find("__ID__", 1, true), "the template has no __ID__")
    local sequential = args[4] == "seq"
    local counter = 0
    local fixed = string.format("-%04x-4%s-8%s-", tid, run:sub(1, 3), run:sub(4, 6))
    -- Every identifier has the same length, so the whole request (request
    -- line, headers with Content-Length, body) is formatted once and only
    -- the identifier is spliced in: wrk's CPU goes to sending, not to Lua.
    -- Every __ID__ gets the same identifier.
    local sample = string.format("%08x%s%012x", 0, fixed, 0)
    local whole = wrk.format("POST", nil, nil, (template:gsub("__ID__", sample)))
    local pieces, from = {}, 1
    while true do
      local at = whole:find(sample, from, true)
      if not at then break end
      pieces[#pieces + 1] = whole:sub(from, at - 1)
      from = at + #sample
    end
    local head, tail = pieces[1], whole:sub(from)
    math.randomseed(tonumber(run, 16) + tid)
    local function next_id()
      counter = counter + 1
      if sequential then
        return string.format("00000000%s%012x", fixed, counter)
      end
      return string.format("%04x%04x%s%012x",
        math.random(0, 65535), math.random(0, 65535), fixed, counter)
    end
    if #pieces == 1 then
      request = function()
        return head .. next_id() .. tail
      end
    else
      request = function()
        local id = next_id()
        return table.concat(pieces, id) .. id .. tail
      end
    end
  end

  if rate > 0 then
    local interval = 1000 / rate
    local next_due = nil
    delay = function()
      local t = now_ms()
      if next_due == nil then
        next_due = t
      else
        next_due = next_due + interval
      end
      local d = next_due - t
      if d <= 0 then
        return 0
      end
      return math.floor(d + 0.5)
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
