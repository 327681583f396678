-- random-project.lua - wrk script of bench-gateway.sh: each request asks for a random project.
--
--   wrk ... -s tests/bench/random-project.lua URL -- N PREFIX [SUFFIX]
--
-- Requests PREFIX..id..SUFFIX with id uniform in 1..N (e.g. /api/v1/projects/ and
-- /tasks?limit=50), with the headers given to wrk (-H). Each thread has its own seed.
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

function init(args)
  n = tonumber(args[1])
  prefix = args[2]
  suffix = args[3] or ""
  if not n or n < 1 or not prefix then
    error("usage: wrk ... -s random-project.lua URL -- N PREFIX [SUFFIX]")
  end
  math.randomseed(os.time() * 1000 + (thread_no or 0))
end

function request()
  return wrk.format("GET", prefix .. math.random(n) .. suffix)
end
