-- reads.lua - wrk script: GET a list of read URLs, cycling through all of them.
--
-- Usage: wrk -s reads.lua URL -- PATHS_FILE AUTH
-- PATHS_FILE holds one path (with its query) per line; each wrk thread starts at its
-- own offset and walks the whole list. AUTH is the Authorization header's value ("" for
-- none). Requests are formatted once in init(). response() counts the answers by
-- status; done() prints one "BENCH {json}" line for bench.py's --reads mode.
local threads = {}
local counter = 0

function setup(thread)
   thread:set("tid", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

local reqs = {}
local n = 0
local idx = 0
ok = 0
bad = 0
busy = 0

function init(args)
   local paths, auth = args[1], args[2]
   local headers = {}
   if auth and auth ~= "" then
      headers["Authorization"] = auth
   end
   for line in io.lines(paths) do
      if line ~= "" then
         n = n + 1
         reqs[n] = wrk.format("GET", line, headers)
      end
   end
   assert(n > 0, "reads.lua: no paths in " .. paths)
   idx = (tid * 7919) % n
end

function request()
   idx = idx % n + 1
   return reqs[idx]
end

function response(status, headers, body)
   if status == 200 then
      ok = ok + 1
   elseif status == 503 then
      busy = busy + 1
   else
      bad = bad + 1
   end
end

function done(summary, latency, requests)
   local o, b, y = 0, 0, 0
   for _, t in ipairs(threads) do
      o, b, y = o + t:get("ok"), b + t:get("bad"), y + t:get("busy")
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"ok":%d,"busy":%d,"other":%d,"err_connect":%d,"err_read":%d,"err_write":%d,' ..
      '"err_timeout":%d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, o, y, b, e.connect, e.read, e.write, e.timeout))
end
