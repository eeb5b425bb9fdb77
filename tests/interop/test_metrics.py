"""/metrics seen by the official Prometheus client's OpenMetrics parser, and compared with the
gRPC Status of the same server while a run builds and holds."""

import time

import pytest

from interop_helpers import fetch, method, scrape, start_stressd

MIB = 1 << 20
STATE_ORDER = ["idle", "building", "searching", "completed", "stopped", "failed"]
# family -> (type, unit); unit "" = none.
FAMILIES = {
    "memstress_build": ("info", ""),
    "memstress_state": ("gauge", ""),
    "memstress_searches": ("counter", ""),
    "memstress_target_bytes": ("gauge", "bytes"),
    "memstress_nodes": ("gauge", ""),
    "memstress_payload_bytes": ("gauge", "bytes"),
    "memstress_fill_rate_bytes_per_second": ("gauge", "bytes_per_second"),
    "memstress_peak_resident_memory_bytes": ("gauge", "bytes"),
    "memstress_peak_working_set_bytes": ("gauge", "bytes"),
    "memstress_runs": ("counter", ""),
    "memstress_time_to_target_seconds": ("histogram", "seconds"),
    "memstress_history_durable": ("gauge", ""),
    "memstress_log_entries": ("counter", ""),
    "memstress_log_watchers": ("gauge", ""),
    "memstress_container_memory_limit_bytes": ("gauge", "bytes"),
    "memstress_container_memory_usage_bytes": ("gauge", "bytes"),
    "memstress_container_memory_working_set_bytes": ("gauge", "bytes"),
    "memstress_container_oom_kills": ("counter", ""),
    "memstress_container_memory_pressure_seconds": ("counter", "seconds"),
    "process_resident_memory_bytes": ("gauge", "bytes"),
    "process_cpu_seconds": ("counter", "seconds"),
    "process_start_time_seconds": ("gauge", "seconds"),
    "process_open_fds": ("gauge", ""),
}
# Start parameters of the compared run: ~4 s of building at 64 MiB/s, then a 5 s hold.
RAMP_MB_PER_SECOND = 64
TARGET_MB = 256
HOLD_SECONDS = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_stressd("--state-dir", str(tmp_path_factory.mktemp("state")))
    yield s
    assert s.stop() == 0


def _state_name(pool, number) -> str:
    name = pool.FindEnumTypeByName("memstress.v1.State").values_by_number[number].name
    return name.removeprefix("STATE_").lower()


def _current_state(m) -> str:
    fam = m.families["memstress_state"]
    ones = [s.labels["state"] for s in fam.samples if s.value == 1]
    assert len(ones) == 1, f"exactly one state must be 1: {fam.samples}"
    assert sorted(s.labels["state"] for s in fam.samples) == sorted(STATE_ORDER)
    assert all(s.value in (0, 1) for s in fam.samples)
    return ones[0]


def test_families_types_and_units(server):
    m = scrape(server.http_addr)
    assert m.text.endswith("# EOF\n")
    got = {name: (f.type, f.unit) for name, f in m.families.items()}
    assert got == FAMILIES
    for fam in m.families.values():
        assert fam.documentation, f"{fam.name} has no HELP"
        for s in fam.samples:
            if fam.type == "counter":
                assert s.name == fam.name + "_total", s
            elif fam.type == "histogram":
                assert s.name in {fam.name + "_bucket", fam.name + "_sum", fam.name + "_count"}, s
            elif fam.type == "info":
                assert s.name == fam.name + "_info" and s.value == 1, s
            else:
                assert s.name == fam.name, s
    assert _current_state(m) == "idle"
    build = m.families["memstress_build"].samples[0]
    assert build.labels["version"]
    assert m.sample("memstress_history_durable") == 1, "started with --state-dir"
    assert {s.labels["outcome"] for s in m.families["memstress_runs"].samples} == {
        "completed", "stopped", "failed", "killed", "oom_killed"}
    buckets = [s for s in m.families["memstress_time_to_target_seconds"].samples
               if s.name.endswith("_bucket")]
    assert buckets[-1].labels["le"] == "+Inf"
    assert m.sample("process_resident_memory_bytes") > 0
    assert m.sample("process_open_fds") > 3
    start = m.sample("process_start_time_seconds")
    assert time.time() - 600 < start <= time.time() + 1


def test_index_lists_metrics(server):
    status, headers, body = fetch(server.http_addr, "/")
    assert status == 200 and headers["content-type"] == "application/json"
    assert '"/metrics"' in body


def _pair(server, status_call, status_req, pool):
    """Status, scrape, Status: the scrape was taken between the two answers."""
    before = status_call(status_req(), timeout=5)
    m = scrape(server.http_addr)
    after = status_call(status_req(), timeout=5)
    return before, m, after


def _between(lo, value, hi, slack, what):
    assert lo - slack <= value <= hi + slack, f"{what}: {value} not within [{lo}, {hi}] ± {slack}"


def _check_agreement(before, m, after, pool):
    # What one second of the ramp can add, plus one build batch (8 MiB) and one glibc heap
    # step (16 MiB) of slack: the three reads are milliseconds apart.
    slack = RAMP_MB_PER_SECOND * MIB + 24 * MIB
    s_before, s_after = _state_name(pool, before.state), _state_name(pool, after.state)
    state = _current_state(m)
    order = STATE_ORDER.index
    # This run only moves forward (idle, building, searching, completed), so the scrape's state
    # lies between the two answers, and at most one step from the first.
    assert order(s_before) <= order(state) <= order(s_after), (s_before, state, s_after)
    assert order(state) - order(s_before) <= 1, (s_before, state)
    assert m.sample("memstress_target_bytes") == before.target_bytes == after.target_bytes
    _between(before.payload_bytes, m.sample("memstress_payload_bytes"), after.payload_bytes, 0, "payload")
    _between(before.nodes, m.sample("memstress_nodes"), after.nodes, 0, "nodes")
    _between(min(before.rss_bytes, after.rss_bytes), m.sample("process_resident_memory_bytes"),
             max(before.rss_bytes, after.rss_bytes), slack, "rss")
    _between(before.peak_rss_bytes, m.sample("memstress_peak_resident_memory_bytes"),
             after.peak_rss_bytes, 0, "peak rss")
    limit = m.sample("memstress_container_memory_limit_bytes")
    has_limit = before.container.HasField("limit_bytes")
    assert (limit is not None) == has_limit
    if has_limit:
        assert limit == before.container.limit_bytes == after.container.limit_bytes
    ws = m.sample("memstress_container_memory_working_set_bytes")
    if before.container.HasField("working_set_bytes") and ws is not None:
        _between(min(before.container.working_set_bytes, after.container.working_set_bytes), ws,
                 max(before.container.working_set_bytes, after.container.working_set_bytes),
                 slack, "working set")
    assert m.sample("memstress_searches_total") >= before.searches
    fill = m.sample("memstress_fill_rate_bytes_per_second")
    if state == "building":
        # Over a half-second window, with steps of 10 ms: around the ramp, never far above.
        assert 0 <= fill <= 3 * RAMP_MB_PER_SECOND * MIB, fill
    else:
        assert fill == 0
    return state


def test_scrape_agrees_with_status_during_a_run(server):
    start_req, start, pool = method(server.channel, "Start")
    status_req, status, _ = method(server.channel, "Status")
    ok = start(start_req(memory_mb=TARGET_MB, ramp_mb_per_second=RAMP_MB_PER_SECOND,
                         duration_seconds=HOLD_SECONDS), timeout=5)
    assert ok.target_bytes == TARGET_MB * MIB
    seen = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            before, m, after = _pair(server, status, status_req, pool)
            seen.append(_check_agreement(before, m, after, pool))
            if seen[-1] == "completed":
                break
            time.sleep(0.4)
    finally:
        stop_req, stop, _ = method(server.channel, "Stop")
        stop(stop_req(), timeout=10)
    assert "building" in seen and "searching" in seen, seen
    assert seen[-1] == "completed", seen

    m = scrape(server.http_addr)
    assert m.sample("memstress_runs_total", outcome="completed") >= 1
    assert m.sample("memstress_time_to_target_seconds_count") >= 1
    ttt = m.sample("memstress_time_to_target_seconds_sum")
    # 256 MiB at 64 MiB/s from a baseline of a few MiB: about 4 s.
    assert 1.0 < ttt < 20.0, ttt
    assert m.sample("memstress_searches_total") > 0
    assert m.sample("memstress_log_entries_total") >= 5

    clear_req, clear, _ = method(server.channel, "Clear")
    clear(clear_req(), timeout=10)
    m = scrape(server.http_addr)
    assert _current_state(m) == "idle"
    assert m.sample("memstress_nodes") == 0 and m.sample("memstress_payload_bytes") == 0
    assert m.sample("memstress_target_bytes") == TARGET_MB * MIB, "last run's target is kept"


def test_log_watchers_count_followers(server):
    watch_req, watch, _ = method(server.channel, "WatchLogs")
    base = scrape(server.http_addr).sample("memstress_log_watchers")
    stream = watch(watch_req(from_sequence=0, follow=True), timeout=30)
    next(stream)  # the stream is being served
    try:
        deadline = time.monotonic() + 5
        while scrape(server.http_addr).sample("memstress_log_watchers") != base + 1:
            assert time.monotonic() < deadline, "follower not counted"
            time.sleep(0.05)
    finally:
        stream.cancel()
    deadline = time.monotonic() + 5
    while scrape(server.http_addr).sample("memstress_log_watchers") != base:
        assert time.monotonic() < deadline, "follower still counted after cancel"
        time.sleep(0.05)
