"""Drives one scenario against one server for a fixed time: wrk, or a Python fallback.

wrk gets a Lua script made for the scenario: `request()` draws random ids and builds POST
bodies, and `done()` prints the run's figures as one JSON line, which is all we parse.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULT_MARKER = "BENCH_RESULT "


@dataclass(frozen=True)
class Scenario:
    name: str
    method: str
    path: str  # for "get_by_id", the prefix the random id is appended to
    kind: str  # "static", "get_by_id" or "post"


@dataclass
class RunResult:
    requests: int
    seconds: float
    non_2xx: int  # wrk's "Non-2xx or 3xx responses": statuses >= 400
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


# `done()` runs once, in wrk's main Lua state, with every thread's figures merged.
LUA_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,'
    .. '"p50_us":%d,"p99_us":%d}\\n',
    "RESULT_MARKER", summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
""".replace("RESULT_MARKER", RESULT_MARKER)

# Each wrk thread has its own Lua state: number them so that their random streams differ.
LUA_SETUP = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end
local function seed()
  math.randomseed(os.time() * 1000 + (thread_number or 0))
end
"""

LUA_REQUESTS = {
    "static": "",  # no request(): wrk sends the URL's fixed request, the cheapest way
    "get_by_id": """
local max_id = 1
function init(args)
  max_id = tonumber(args[1])
  seed()
end
function request()
  return wrk.format("GET", "PATH" .. math.random(1, max_id))
end
""",
    "post": """
local counter = 0
local tag = ""
local headers = {["Content-Type"] = "application/json"}
function init(args)
  seed()
  tag = tostring(math.random(1, 1000000000))
  if args[2] and args[2] ~= "" then
    headers["Authorization"] = "Bearer " .. args[2]
  end
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"label":"Bench Saffron Stew %s-%d","source":"wrk",'
    .. '"url":"https://recipes.example.com/wrk/%s-%d"}',
    tag, counter, tag, counter)
  return wrk.format("POST", "PATH", headers, body)
end
""",
}


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _lua_script(scenario: Scenario) -> str:
    return LUA_SETUP + LUA_REQUESTS[scenario.kind].replace("PATH", scenario.path) + LUA_DONE


def _parse(output: str) -> RunResult:
    for line in output.splitlines():
        if line.startswith(RESULT_MARKER):
            data: dict[str, Any] = json.loads(line.removeprefix(RESULT_MARKER))
            return RunResult(
                requests=int(data["requests"]),
                seconds=data["duration_us"] / 1e6,
                non_2xx=int(data["non_2xx"]),
                socket_errors=int(data["socket_errors"]),
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
            )
    raise RuntimeError(f"no result in the load generator's output:\n{output}")


def run_load(
    base_url: str,
    scenario: Scenario,
    *,
    seconds: float,
    connections: int,
    max_id: int,
    token: str = "",
    use_wrk: bool = True,
) -> RunResult:
    """Load `base_url` with `scenario` for `seconds` over `connections` keep-alive connections;
    writes carry `token` as a bearer token."""
    target = base_url + (scenario.path if scenario.kind == "static" else "/")
    if not use_wrk:
        command = [
            sys.executable, "-m", "bench.loadgen", target, "--kind", scenario.kind,
            "--path", scenario.path, "--seconds", str(seconds),
            "--connections", str(connections), "--max-id", str(max_id), "--token", token,
        ]  # fmt: skip
        return _parse(_run(command, seconds))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-") as script:
        script.write(_lua_script(scenario))
        script.flush()
        # One wrk thread: wrk needs little CPU, and every core it takes is lost to the servers.
        command = [
            "wrk", "--threads", "1", "--connections", str(connections),
            "--duration", f"{round(seconds)}s", "--timeout", "10s",
            "--script", script.name, target, "--", str(max_id), token,
        ]  # fmt: skip
        return _parse(_run(command, seconds))


def _run(command: list[str], seconds: float) -> str:
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{command[0]} exited {completed.returncode}:\n{completed.stdout}{completed.stderr}"
        )
    return completed.stdout
