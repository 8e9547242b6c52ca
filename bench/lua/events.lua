-- wrk script for sluice's load scenarios: every event carries a unique messageId
-- (duplicates are cheaper to ingest and would flatter the numbers).
--
--   wrk ... -s bench/lua/events.lua URL -- MODE TAG [SIZE] [POOL] [DELAY_MS]
--
-- MODE   single   one event per request
--        batch    {"batch":[SIZE events]} per request
--        dup      a batch whose even-indexed events repeat events stored LAG requests ago
--        uuid     {"batch":[SIZE events]} with random UUIDv4 messageIds, as Segment's and
--                 RudderStack's server SDKs send them (the soak scenario, bench/soak.ts)
--        gzip     bodies taken in turn from POOL (pre-gzipped batches, see gzip-pool.ts)
-- TAG    makes messageIds unique across runs (warm-up and measurement differ)
-- DELAY_MS  mean pause before each request on a connection (paced runs; 0 = flat out)

wrk.method = "POST"

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- The event (bench/lua/event.json.tmpl, shared with gzip-pool.ts), split around its
-- messageId placeholder.
local function read_template()
  local file = assert(os.getenv("BENCH_EVENT_TEMPLATE"), "BENCH_EVENT_TEMPLATE is not set")
  local text = assert(io.open(file, "r")):read("*l")
  local at = assert(text:find("@ID@", 1, true), "template has no @ID@")
  return text:sub(1, at - 1), text:sub(at + 4)
end
local EVENT_PRE, EVENT_POST = read_template()
local BATCH_PRE = '{"sentAt":"2025-06-01T12:00:01.000Z","batch":['
local BATCH_POST = ']}'
-- Requests between an event and its repeat in "dup" mode: far more than are ever in
-- flight, so the repeated event is already stored (a client retrying a batch).
local LAG = 64

local mode, prefix, size, pause
local counter = 0
local pool, pool_at = {}, 0
-- A global, not a local: done() reads it from each thread with thread:get().
wrapped = 0

local function load_pool(file)
  local index = assert(io.open(file .. ".idx", "r"))
  local data = assert(io.open(file, "rb")):read("*a")
  local at = 1
  for line in index:lines() do
    local len = tonumber(line)
    table.insert(pool, data:sub(at, at + len - 1))
    at = at + len
  end
  index:close()
end

function init(args)
  mode = args[1] or "single"
  prefix = (args[2] or "run") .. "-" .. tostring(tid) .. "-"
  size = tonumber(args[3] or "1")
  if mode == "gzip" then load_pool(args[4]) end
  pause = tonumber(args[5] or "0")
  if pause > 0 or mode == "uuid" then
    -- The tag differs between runs: seeding from it keeps two runs' UUIDs apart.
    local seed = os.time() + tid * 7919
    for c in (args[2] or ""):gmatch(".") do seed = (seed * 31 + c:byte()) % 2147483647 end
    math.randomseed(seed)
  end
end

-- A scrambled 32-bit hash of (request, index): puts ids in random order, as UUIDs are,
-- so the dedup index sees random inserts rather than appends. Deterministic, so "dup"
-- mode can repeat an earlier event's id; the suffix keeps every id unique.
local function scramble(n, i)
  local x = bit.tobit(n * 1031 + i)
  x = bit.bxor(x, bit.rshift(x, 16))
  x = bit.tobit(x * 0x45d9f3b)
  x = bit.bxor(x, bit.rshift(x, 16))
  x = bit.tobit(x * 0x45d9f3b)
  return bit.tohex(bit.bxor(x, bit.rshift(x, 16)))
end

local function event_id(n, i)
  return scramble(n, i) .. "-" .. prefix .. n .. "-" .. i
end

-- A random version-4 UUID (122 random bits), built from 16-bit pieces so that no
-- number passes LuaJIT's 32-bit bit operations.
local function uuid4()
  local r = math.random
  return string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x",
    r(0, 0xffff), r(0, 0xffff), r(0, 0xffff), r(0, 0xfff), 0x8000 + r(0, 0x3fff),
    r(0, 0xffff), r(0, 0xffff), r(0, 0xffff))
end

local function batch_body(n)
  local parts = {}
  for i = 1, size do
    local id
    if mode == "uuid" then
      id = uuid4()
    elseif mode == "dup" and i % 2 == 0 and n > LAG then
      id = event_id(n - LAG, i - 1)
    else
      id = event_id(n, i)
    end
    parts[i] = EVENT_PRE .. id .. EVENT_POST
  end
  return BATCH_PRE .. table.concat(parts, ",") .. BATCH_POST
end

function request()
  counter = counter + 1
  local body
  if mode == "single" then
    body = EVENT_PRE .. event_id(counter, 0) .. EVENT_POST
  elseif mode == "gzip" then
    pool_at = pool_at + 1
    if pool_at > #pool then
      pool_at = 1
      wrapped = wrapped + 1
    end
    body = pool[pool_at]
  else
    body = batch_body(counter)
  end
  return wrk.format(nil, nil, nil, body)
end

if tonumber(os.getenv("BENCH_PACED") or "0") > 0 then
  -- Random pauses (uniform, mean DELAY_MS) keep connections from sending in lockstep.
  function delay()
    return math.random(0, 2 * pause)
  end
end

function done(summary, latency)
  local wraps = 0
  for _, t in ipairs(threads) do
    wraps = wraps + (t:get("wrapped") or 0)
  end
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"durationUs":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latencyUs":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d},"poolWraps":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, wraps))
end
