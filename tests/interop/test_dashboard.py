"""k8s/grafana/memstress.json: an importable dashboard whose every query names metrics that a
live stressd really exports."""

import json
import re

import pytest

from interop_helpers import REPO, scrape, start_stressd

DASHBOARD = REPO / "k8s" / "grafana" / "memstress.json"
# PromQL words that look like identifiers but are not metric names.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan"}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _panels(panels):
    for p in panels:
        yield p
        yield from _panels(p.get("panels") or [])


def _targets(dashboard):
    return [(p["title"], t) for p in _panels(dashboard["panels"]) for t in p.get("targets") or []]


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects: identifiers that are not inside a label
    matcher, a range, a string or a grouping clause, not a function call and not a keyword."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges and subqueries
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", expr):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def test_name_extraction():
    assert metric_names('histogram_quantile(0.5, sum by (le) (increase(a_bucket{pod=~"$pod"}[1h])))') == {"a_bucket"}
    assert metric_names("time() - process_start_time_seconds{x=\"y\"}") == {"process_start_time_seconds"}
    assert metric_names('sum by (pod) (m{state="idle"}) * 0\n+ sum by (pod) (m{state="x"}) * 1') == {"m"}
    assert metric_names("rate(a_total[$__rate_interval]) / on(pod) group_left b") == {"a_total", "b"}


def test_dashboard_is_an_importable_model(dashboard):
    assert dashboard["uid"] == "memstress" and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    pod = variables["pod"]
    assert pod["type"] == "query"
    assert pod["definition"] == "label_values(memstress_build_info, pod)"
    assert pod["query"]["query"] == pod["definition"]
    ids = [p["id"] for p in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in _panels(dashboard["panels"]):
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], f"{p['title']} has no query"
    for title, t in _targets(dashboard):
        assert t["datasource"]["uid"] == "${datasource}", title
        assert 'pod=~"$pod"' in t["expr"], f"{title}: query not filtered by the pod variable"
    refs = [(p["id"], t["refId"]) for p in _panels(dashboard["panels"]) for t in p.get("targets") or []]
    assert len(refs) == len(set(refs)), "refIds must be unique within a panel"


def test_dashboard_covers_the_promised_panels(dashboard):
    exprs = " ".join(t["expr"] for _, t in _targets(dashboard))
    for needle in ["process_resident_memory_bytes", "memstress_container_memory_working_set_bytes",
                   "memstress_target_bytes", "memstress_container_memory_limit_bytes",
                   "memstress_state", "increase(memstress_container_oom_kills_total",
                   'memstress_runs_total{pod=~"$pod", outcome="oom_killed"}',
                   "memstress_fill_rate_bytes_per_second", "rate(memstress_searches_total",
                   "histogram_quantile(0.95, sum by (le) (increase(memstress_time_to_target_seconds_bucket"]:
        assert needle in exprs, needle
    assert "state-timeline" in {p["type"] for p in _panels(dashboard["panels"])}


def test_every_dashboard_metric_is_exported(dashboard):
    server = start_stressd()
    try:
        m = scrape(server.http_addr)
    finally:
        assert server.stop() == 0
    declared = m.declared_sample_names()
    used = {}
    for title, t in _targets(dashboard):
        for name in metric_names(t["expr"]):
            used.setdefault(name, []).append(title)
    assert len(used) >= 10, used
    missing = {name: titles for name, titles in used.items() if name not in declared}
    assert not missing, f"dashboard queries metrics /metrics does not export: {missing}"
    # Families with no sample right now are those whose value this host cannot know (no
    # cgroup limit, no PSI); everything else the dashboard plots has a value.
    unknowable = {"memstress_container_memory_limit_bytes",
                  "memstress_container_memory_pressure_seconds_total",
                  "memstress_container_memory_working_set_bytes",
                  "memstress_container_oom_kills_total"}
    without_value = set(used) - m.sample_names()
    assert without_value <= unknowable, without_value
