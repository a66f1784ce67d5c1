-- cycle.lua - wrk script: POST pre-built bodies, cycling through all of them.
--
-- Usage: wrk -s cycle.lua URL -- DIR COUNT CONTENT_TYPE TOKEN CONNS_PER_THREAD
-- DIR holds COUNT files named 000, 001, ...; each wrk thread starts at its own
-- offset and walks the whole list. Requests are formatted once in init(), so the
-- client's cost per request is a table lookup. done() prints one "BENCH {json}"
-- line for bench.py: counts, latency percentiles, and which bodies were sent
-- ("sent": every request handed to wrk; "done": all but the last `inflight` of
-- each thread, i.e. those certainly answered before the run stopped).

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

function init(args)
   local dir, count, ctype, token = args[1], tonumber(args[2]), args[3], args[4]
   inflight = tonumber(args[5] or "0")
   wrk.method = "POST"
   wrk.headers["Content-Type"] = ctype
   if token and token ~= "" then
      wrk.headers["Authorization"] = "Bearer " .. token
   end
   for i = 0, count - 1 do
      local f = assert(io.open(string.format("%s/%03d", dir, i), "rb"))
      reqs[i + 1] = wrk.format(nil, nil, nil, f:read("*a"))
      f:close()
   end
   n = count
   -- spread the threads' starting points over the list
   idx = math.floor(tid * n / 8) % n
   first = idx
end

function request()
   idx = idx % n + 1
   sent = sent + 1
   return reqs[idx]
end

-- Which bodies some thread sent: thread t sent bodies first+1 .. first+sent (mod n),
-- less the last `inflight` (its connections) when only answered ones count.
local function covered_map(answered)
   local hit, n_all = {}, threads[1]:get("n")
   for _, t in ipairs(threads) do
      local f, s = t:get("first"), t:get("sent")
      if answered then s = s - t:get("inflight") end
      for k = 1, math.min(s, n_all) do hit[(f + k - 1) % n_all + 1] = true end
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
