-- stream.lua - wrk script: POST the requests that tsbs_gen.so makes on the fly.
--
-- Usage: wrk -s stream.lua URL -- LIB SPEC OUT MODE CONNS_PER_THREAD
--   LIB   path of tsbs_gen.so; SPEC: the stream's spec file (key=value lines, tsbs_gen.c)
--   OUT   a directory for this run's files
--   MODE  run:   as fast as possible (throughput runs)
--         drain: the stream has an end; each thread writes OUT/done-<tid> once all its
--                connections are idle (every body sent and answered or failed), so that
--                the caller can stop wrk right then
--         track: one connection per thread (wrk -tN -cN), so that answers arrive in the
--                order of the requests: OUT/track-<tid> gets "BODY STATUS" per request
--                (0: its connection failed before an answer), plus drain's files
-- All threads pull from one stream in order (tsbs_gen's lock), so a body is sent once.
-- A request costs the client one body generated in C (the walk, the text) and two copies.
--
-- Two things about wrk 4.1 shape this script. It calls request() once during set-up, in
-- its main thread, to check the request's format: that call gets a GET that is never sent,
-- so no body is lost. And it calls response() only for answers that carry headers:
-- temporisd's 204 carries none (its errors always carry Content-Type and a JSON body), so
-- track mode learns of an answer from delay(), which wrk calls before each next request of
-- the connection, and takes an answer without a response() call for a 204 (done() reports
-- how many, and wrk's own count of statuses >= 400 must match the ones seen).
--
-- done() saves the stream's state to OUT/state (the next run continues from it) and
-- prints one "BENCH {json}" line: wrk's counts and latency percentiles, the stream's
-- position and end ("end": 0 running, -1 its last body sent, -2 the next one would be in
-- the future), and how many requests took over 1 s.

local ffi = require("ffi")
ffi.cdef [[
typedef struct tg_stream tg_stream;
tg_stream *tg_shared(const char *spec);
long tg_next(tg_stream *h, const char **out, size_t *len);
long tg_position(tg_stream *h);
int tg_status(tg_stream *h);
int tg_save(tg_stream *h, const char *path);
unsigned long pthread_self(void);
]]

local SLOW_US = 1000000
local FLUSH_EVERY = 512
local SEARCH_STEPS = 40
local HEADERLESS = 204

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

libpath, spec, outdir, mode = nil, nil, nil, nil
sent, idle, ended, conns = 0, 0, 0, 1
headerless, seen_errors = 0, 0
local lib, stream, outp, lenp, setup_thread
local track, pending, status, unflushed = nil, nil, nil, 0
local finished = false

local function finish()
   if finished then return end
   finished = true
   if track then track:flush() end
   assert(io.open(string.format("%s/done-%d", outdir, tid), "w")):close()
end

local function note(body, st)
   track:write(body, " ", st, "\n")
   unflushed = unflushed + 1
   if unflushed >= FLUSH_EVERY then
      track:flush()
      unflushed = 0
   end
end

-- track: an answer arrived (delay() comes before the connection's next request)
local function answered()
   if pending then
      if not status then headerless = headerless + 1 end
      note(pending, status or HEADERLESS)
      pending = nil
   end
   status = nil
   return 0
end

local function on_response(st)
   status = st
   if st >= 400 then seen_errors = seen_errors + 1 end
end

function init(args)
   libpath, spec, outdir, mode = args[1], args[2], args[3], args[4] or "run"
   conns = tonumber(args[5] or "1")
   setup_thread = ffi.C.pthread_self()
   lib = ffi.load(libpath)
   stream = lib.tg_shared(spec)
   assert(stream ~= nil, "stream.lua: cannot open " .. spec)
   outp = ffi.new("const char *[1]")
   lenp = ffi.new("size_t[1]")
   if mode == "track" then
      track = assert(io.open(string.format("%s/track-%d", outdir, tid), "w"))
      delay = answered
      response = on_response
   end
end

function request()
   if ffi.C.pthread_self() == setup_thread then
      return wrk.format("GET", "/")          -- wrk's format check, never sent
   end
   if track and pending then note(pending, 0) end   -- no answer: its connection failed
   pending = nil
   local b = tonumber(lib.tg_next(stream, outp, lenp))
   if b < 0 then
      -- nothing left: an empty request leaves this connection idle
      ended = b
      idle = idle + 1
      if mode ~= "run" and idle >= conns then finish() end
      return ""
   end
   pending = b
   sent = sent + 1
   return ffi.string(outp[0], lenp[0])
end

-- Requests slower than SLOW_US, from the latency percentiles (to about one request).
local function slow_count(latency, total)
   if total == 0 or latency.max <= SLOW_US then return 0 end
   local lo, hi = 0, 100
   for _ = 1, SEARCH_STEPS do
      local mid = (lo + hi) / 2
      if latency:percentile(mid) > SLOW_US then hi = mid else lo = mid end
   end
   return math.floor(total * (100 - hi) / 100 + 0.5)
end

function done(summary, latency, requests)
   local t1 = threads[1]
   local dlib = ffi.load(t1:get("libpath"))
   local h = dlib.tg_shared(t1:get("spec"))
   local saved = dlib.tg_save(h, t1:get("outdir") .. "/state") == 0
   local s, hl, se, per = 0, 0, 0, {}
   for _, t in ipairs(threads) do
      s, hl, se = s + t:get("sent"), hl + t:get("headerless"), se + t:get("seen_errors")
      table.insert(per, string.format("[%d,%d,%d]", t:get("sent"), t:get("idle"), t:get("ended")))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
      '"sent":%d,"headerless":%d,"seen_errors":%d,"position":%d,"end":%d,"saved":%s,' ..
      '"slow":%d,"threads":[%s]}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, e.connect, e.read, e.write, e.status, e.timeout, s, hl, se,
      tonumber(dlib.tg_position(h)), dlib.tg_status(h), tostring(saved),
      slow_count(latency, summary.requests), table.concat(per, ",")))
end
