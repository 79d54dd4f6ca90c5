#!/usr/bin/env python3
"""The official OmniDimension Python SDK (`omnidimension` 0.6.0) against
`dialerd simulate`, unchanged: proves the simulator serves what the real SDK
sends and expects.

Run after `cargo build`:  python3 tests/sdk/test_sdk.py
The simulator command is `$DIALERD_SIM_CMD` (a command prefix, e.g.
`target/debug/examples/simulate`), else `$DIALERD_BIN simulate`, else
`target/debug/dialerd simulate`. Prints `N passed, M failed`; exits non-zero
on any failure.
"""

import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

try:
    from omnidimension import Client
    from omnidimension.client import APIError
except ImportError:
    print("the omnidimension SDK is not installed: pip install omnidimension==0.6.0")
    print("0 passed, 1 failed")
    sys.exit(1)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# The simulator's default key; the SDK refuses keys shorter than 8 characters,
# and this one is long enough, so the simulator runs with no --api-key.
KEY = "sim-key-local"


def sim_command():
    if os.environ.get("DIALERD_SIM_CMD"):
        return shlex.split(os.environ["DIALERD_SIM_CMD"])
    binary = os.environ.get("DIALERD_BIN", os.path.join(ROOT, "target", "debug", "dialerd"))
    return [binary, "simulate"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Simulator:
    def __init__(self, journal):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/api/v1"
        cmd = sim_command() + [
            "--listen", f"127.0.0.1:{self.port}",
            "--seed", "7",
            "--outcomes", "completed=1",
            "--call-secs", "0.2-0.3",
            "--journal", journal,
        ]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
        deadline = time.time() + 15
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the simulator exited with {self.proc.returncode}: {cmd}")
            try:
                self.stats()
                return
            except OSError:
                if time.time() > deadline:
                    self.stop()
                    raise RuntimeError("the simulator did not start listening")
                time.sleep(0.05)

    def stats(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_sim/stats", timeout=2) as r:
            return json.load(r)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    journal = tempfile.NamedTemporaryFile(prefix="sdk-journal-", suffix=".jsonl", delete=False).name
    sim = Simulator(journal)
    client = Client(KEY, base_url=sim.base)
    state = {}

    def dispatch_returns_the_documented_answer():
        r = client.call.dispatch_call(101, "+14155552671", call_context={"name": "Ann", "plan": "gold"})
        check(r["status"] == 200, r)
        body = r["json"]
        check(body["success"] is True and body["status"] == "dispatched", body)
        check(isinstance(body["requestId"], int), body)
        check(body["custom_variables_count"] == 2, body)
        state["request_id"] = body["requestId"]

    def dispatch_with_defaults_and_a_caller_number_id():
        r = client.call.dispatch_call(101, "+14155552672")
        check(r["json"]["custom_variables_count"] == 0, r)
        r = client.call.dispatch_call(102, "+14155552673", from_number_id=5, call_context={"x": 1})
        check(r["json"]["success"] is True, r)

    def get_call_logs_pages_and_filters_by_agent():
        r = client.call.get_call_logs(page=1, page_size=30, agent_id=101)
        body = r["json"]
        check(body["total_records"] == 2, body.get("total_records"))
        logs = body["call_log_data"]
        check(len(logs) == 2 and all(l["agent_id"] == 101 for l in logs), logs)
        check(logs[0]["id"] > logs[1]["id"], "newest first")
        everything = client.call.get_call_logs()["json"]
        check(everything["total_records"] == 3, everything["total_records"])
        small = client.call.get_call_logs(page=2, page_size=2)["json"]
        check(len(small["call_log_data"]) == 1, small)
        oldest = logs[-1]
        check(oldest["call_request_id"]["id"] == state["request_id"], oldest["call_request_id"])
        check(oldest["to_number"] == "+14155552671", oldest)
        state["log_id"] = oldest["id"]

    def get_call_logs_filters_by_status():
        # Run after the calls ended (see the sleep above).
        done = client.call.get_call_logs(call_status="completed")["json"]
        check(done["total_records"] == 3, done["total_records"])
        busy = client.call.get_call_logs(call_status="busy")["json"]
        check(busy["total_records"] == 0 and busy["call_log_data"] == [], busy)

    def get_call_log_reads_one_log_that_ends_completed():
        time.sleep(0.4)
        r = client.call.get_call_log(state["log_id"])
        logs = r["json"]["call_log_data"]
        check(len(logs) == 1, logs)
        log = logs[0]
        check(log["id"] == state["log_id"], log["id"])
        check(log["call_status"] == "completed", log["call_status"])
        check("<br/>" in log["call_conversation"] and "Ann" in log["call_conversation"], log["call_conversation"])
        check(isinstance(log["recording_url"], str), log["recording_url"])
        check(log["is_voicemail"] is False, log["is_voicemail"])
        check(isinstance(log["interactions"], list) and log["interactions"], log["interactions"])
        time.strptime(log["time_of_call"], "%m/%d/%Y %H:%M:%S")

    def an_unknown_log_is_a_404_api_error():
        try:
            client.call.get_call_log(1)
        except APIError as e:
            check(e.status_code == 404, e.status_code)
            return
        raise AssertionError("no error for an unknown log")

    def a_wrong_key_is_a_401_api_error_with_the_description():
        bad = Client("wrong-key-1234", base_url=sim.base)
        try:
            bad.call.dispatch_call(101, "+14155552671", call_context={})
        except APIError as e:
            check(e.status_code == 401, e.status_code)
            check(e.message == "invalid or missing API key", e.message)
            return
        raise AssertionError("no error for a wrong key")

    def a_number_without_plus_is_refused_by_the_server():
        try:
            client.call.dispatch_call(101, "4155552671", call_context={})
        except APIError as e:
            check(e.status_code == 422, e.status_code)
            return
        raise AssertionError("no error for a bad number")

    def the_journal_and_stats_count_every_dispatch():
        stats = sim.stats()
        check(stats["dispatch_requests"] == 5, stats)
        check(stats["calls_placed"] == 3, stats)
        with open(journal) as f:
            lines = [json.loads(l) for l in f if l.strip()]
        check(len(lines) == 5, lines)
        check([l["result"] for l in lines].count("dispatched") == 3, lines)
        check(lines[0]["call_context"] == {"name": "Ann", "plan": "gold"}, lines[0])

    tests = [
        dispatch_returns_the_documented_answer,
        dispatch_with_defaults_and_a_caller_number_id,
        get_call_logs_pages_and_filters_by_agent,
        get_call_log_reads_one_log_that_ends_completed,
        get_call_logs_filters_by_status,
        an_unknown_log_is_a_404_api_error,
        a_wrong_key_is_a_401_api_error_with_the_description,
        a_number_without_plus_is_refused_by_the_server,
        the_journal_and_stats_count_every_dispatch,
    ]
    passed = failed = 0
    try:
        for test in tests:
            try:
                test()
                passed += 1
                print(f"ok   {test.__name__}")
            except Exception:
                failed += 1
                print(f"FAIL {test.__name__}")
                traceback.print_exc()
    finally:
        sim.stop()
        os.unlink(journal)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
