-- cycle.lua - wrk script: POST pre-built bodies, cycling through all of them.
--
-- Usage: wrk -s cycle.lua URL -- DIR COUNT CONTENT_TYPE TOKEN CONNS_PER_THREAD [START THREADS [READY]]
-- DIR holds COUNT files named 000, 001, ...; without START, each wrk thread starts at
-- its own offset and walks the whole list. With START and THREADS, thread t sends
-- bodies START+t, START+t+THREADS, ... (mod COUNT): together the threads walk the list
-- in order from START, so a caller that passes the previous run's end as START sends
-- fresh bodies (new keys, new series) until the list is exhausted. READY (a path
-- that must not exist yet) makes every thread hold its first request until the last
-- thread has loaded its bodies: wrk runs init() thread after thread and starts its
-- clock only after the last one, so with thousands of bodies (seconds of loading) the
-- first thread would otherwise send uncounted time. Requests are
-- formatted once in init(), so the client's cost per request is a table lookup.
-- done() prints one "BENCH {json}" line for bench.py: counts, latency percentiles,
-- and which bodies were sent ("sent": every request handed to wrk; "done": all but
-- the last `inflight` of each thread, i.e. those certainly answered before the run
-- stopped).

local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local reqs = {}
n = 0
local idx = 0
sent = 0
first = 0
inflight = 0
stride = 1
local READY_POLL_US = 5000
local READY_MAX_NAPS = 24000       -- 2 minutes: never hang wrk if a thread's init failed
local ready = false

function init(args)
   local dir, count, ctype, token = args[1], tonumber(args[2]), args[3], args[4]
   inflight = tonumber(args[5] or "0")
   wrk.method = "POST"
   wrk.headers["Content-Type"] = ctype
   if token and token ~= "" then
      wrk.headers["Authorization"] = "Bearer " .. token
   end
   n = count
   if args[6] then
      stride = tonumber(args[7])
      idx = (tonumber(args[6]) + tid) % n
   else
      -- spread the threads' starting points over the list
      idx = math.floor(tid * n / 8) % n
   end
   first = idx
   -- when the stride divides the list, this thread only ever sends its own residue
   -- class: loading just those halves the loading time and memory of large lists
   local own = n % stride == 0
   for i = 0, count - 1 do
      if not own or (i - first) % stride == 0 then
         local f = assert(io.open(string.format("%s/%03d", dir, i), "rb"))
         reqs[i + 1] = wrk.format(nil, nil, nil, f:read("*a"))
         f:close()
      end
   end
   if args[8] then
      hold_until_ready(args[8])
   end
end

-- Sleeps the calling wrk thread (its whole event loop: no request goes out) for a bit.
local function nap()
   local ok, ffi = pcall(require, "ffi")
   if ok then
      pcall(ffi.cdef, "int usleep(unsigned int usec);")
      ffi.C.usleep(READY_POLL_US)
   else
      os.execute(string.format("sleep %f", READY_POLL_US / 1e6))
   end
end

-- Defining delay() (wrk checks for it after the first thread's init) routes every
-- request through a timer. wrk calls it once per request and then waits the ms it
-- returns, so it cannot poll: the first call blocks the thread until the last
-- thread has loaded its bodies (or 2 minutes passed); from then on it returns 0.
function hold_until_ready(path)
   if tid == stride - 1 then
      assert(io.open(path, "w")):close()
   end
   function delay()
      local naps = 0
      while not ready do
         local f = io.open(path, "r")
         if f then
            f:close()
            ready = true
         elseif naps >= READY_MAX_NAPS then
            io.stderr:write("cycle.lua: gave up waiting for " .. path .. "\n")
            ready = true
         else
            nap()
            naps = naps + 1
         end
      end
      return 0
   end
end

-- idx is the 0-based index of the next body to send
function request()
   local r = reqs[idx + 1]
   idx = (idx + stride) % n
   sent = sent + 1
   return r
end

-- Which bodies some thread sent: thread t sent bodies first, first+stride, ... (sent
-- of them, mod n), less the last `inflight` (its connections) when only answered
-- ones count.
local function covered_map(answered)
   local hit, n_all = {}, threads[1]:get("n")
   for _, t in ipairs(threads) do
      local f, s, d = t:get("first"), t:get("sent"), t:get("stride")
      if answered then s = s - t:get("inflight") end
      for k = 0, math.min(s, n_all) - 1 do hit[(f + k * d) % n_all + 1] = true end
   end
   local map = {}
   for i = 1, n_all do map[i] = hit[i] and "1" or "0" end
   return table.concat(map)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
      '"max_us":%d,"err_connect":%d,"err_read":%d,"err_write":%d,' ..
      '"err_status":%d,"err_timeout":%d,"sent":"%s","done":"%s"}\n',
      summary.requests, summary.duration, latency:percentile(50),
      latency:percentile(99), latency.max, e.connect, e.read, e.write,
      e.status, e.timeout, covered_map(false), covered_map(true)))
end
