/**
 * The token bucket of `bucket.ts` as one Redis Lua script, so that a request's check
 * and charge are one atomic step however many sluice instances share the bucket
 * (SPEC 6, 9). The arithmetic is the same as `takeTokens`, line for line.
 *
 * KEYS[1]: the bucket (a hash: tokens, at). ARGV: cost, eventsPerSecond, burst, and
 * `now` in ms, or "" to read Redis's own clock (TIME): one clock for every instance,
 * so skew between their clocks neither mints nor burns tokens.
 * Returns { allowed (1|0), remaining, reset, retryAfter }. The key expires once the
 * bucket would be full again (an absent bucket is a full one), so idle keys cost nothing.
 */
export const TAKE_SCRIPT = `
local cost = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local now
if ARGV[4] == "" then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
else
  now = tonumber(ARGV[4])
end
local state = redis.call("HMGET", KEYS[1], "tokens", "at")
local tokens = burst
local at = now
if state[1] and state[2] then
  tokens = tonumber(state[1])
  at = tonumber(state[2])
end
local elapsed = math.max(0, now - at) / 1000
tokens = math.min(burst, tokens + elapsed * rate)
local charge = math.min(cost, burst)
local allowed = tokens >= charge
local left = tokens
-- A negative cost is a refund (a request charged before it failed): never past the burst.
if allowed then left = math.min(burst, tokens - charge) end
local fullIn = (burst - left) / rate
redis.call("HSET", KEYS[1], "tokens", string.format("%.17g", left), "at", string.format("%.17g", now))
redis.call("PEXPIRE", KEYS[1], math.ceil(fullIn * 1000) + 1000)
local retry = 0
if not allowed then retry = math.max(1, math.ceil((charge - tokens) / rate)) end
return { allowed and 1 or 0, math.floor(left), math.ceil(fullIn), retry }
`;
