"""The viewer's JSON API and pages over a real store, through a real server on 127.0.0.1:
what each route returns, the case table's paging, filters, search and sorting, and what a
hostile user gets for bad ids, bad parameters and odd case ids."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest

from evalbatch.store.reports import case_pass_subquery  # noqa: F401  (the definition pinned)
from evalbatch.view.params import MAX_LIMIT

from .fixtures import CASES, HOSTILE_OUTPUTS, ODD_IDS, PLAIN


def cases(viewer, run_id, **params):
    response = viewer.get(f"/api/runs/{run_id}/cases?{urlencode(params)}")
    assert response.status == 200, response.body
    return response.json()


def test_runs_api_lists_every_run_newest_first_with_the_live_one(viewer, view_store):
    data = viewer.get("/api/runs").json()
    assert [r["id"] for r in data["runs"]] == [view_store.live, view_store.new, view_store.base]
    assert [s["suite"] for s in data["suites"]] == ["hostile"]
    assert [s["id"] for s in data["live"]] == [view_store.live]
    new = data["runs"][1]
    assert new["manifest_changed"] is True and new["url"] == f"/runs/{view_store.new}"


def test_run_api_mirrors_the_summary(viewer, view_store):
    data = viewer.get(f"/api/runs/{view_store.new}").json()
    assert data["headline"].startswith("cost $")
    summary = data["summary"]
    assert [g["name"] for g in summary["graders"]] == ["contains", "rubric"]
    assert summary["cases_scored"] == len(CASES)
    assert summary["cases_passed"] == len(CASES) - len(HOSTILE_OUTPUTS)
    assert {c["step"] for c in summary["costs"]} == {"generate", "grade"}
    assert data["live"] is False and data["state"] is None
    assert data["facets"]["routes"] == ["difficulty=easy", "difficulty=hard"]
    assert "<i>tag</i>" in data["facets"]["tags"]
    assert [h["id"] for h in data["history"]] == [view_store.base, view_store.new, view_store.live]


def test_case_statuses_agree_with_the_one_definition_of_a_pass(viewer, view_store):
    store = view_store.open()
    scored, passed = store.reports.case_pass(view_store.new)
    counts = {s: cases(viewer, view_store.new, status=s)["total"] for s in ("pass", "fail")}
    assert counts == {"pass": passed, "fail": scored - passed}
    assert cases(viewer, view_store.new, status="error")["total"] == 0


def test_case_table_pages_on_the_server(viewer, view_store):
    first = cases(viewer, view_store.new, limit=5)
    assert first["total"] == len(CASES) and len(first["rows"]) == 5
    assert [r["case_id"] for r in first["rows"]] == [c["id"] for c in CASES[:5]]
    second = viewer.get(first["next"]).json()
    assert [r["case_id"] for r in second["rows"]] == [c["id"] for c in CASES[5:10]]
    last = cases(viewer, view_store.new, limit=5, offset=15)
    assert last["next"] is None and len(last["rows"]) == len(CASES) - 15
    assert cases(viewer, view_store.new, offset=10_000)["rows"] == []


def test_case_table_filters(viewer, view_store):
    failed = cases(viewer, view_store.new, status="fail")
    assert {r["case_id"] for r in failed["rows"]} == set(HOSTILE_OUTPUTS)
    assert all(r["status"] == "fail" for r in failed["rows"])
    by_grader = cases(viewer, view_store.new, grader="rubric", status="fail")
    assert by_grader["total"] == 0  # the rubric grader passed every case
    hard = cases(viewer, view_store.new, route="difficulty=hard")
    assert {r["route"] for r in hard["rows"]} == {"difficulty=hard"}
    assert hard["total"] == sum(1 for i in range(len(CASES)) if i % 3 == 0)
    models = {r["model"] for r in hard["rows"]}
    assert len(models) == 1
    assert cases(viewer, view_store.new, model=models.pop())["total"] == hard["total"]
    tagged = cases(viewer, view_store.new, tag="<i>tag</i>")
    assert tagged["total"] == sum(1 for i in range(len(CASES)) if i % 2)
    assert all("<i>tag</i>" in r["tags"] for r in tagged["rows"])


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("xss-img", {"xss-img"}),  # a case id
        ("onerror", {"xss-img", "<img src=x onerror=window.__pwned=5>"}),  # output, then id
        ("PLAIN-3", {"plain-3"}),  # ASCII case is ignored
        ("100%", {"100% done"}),  # LIKE wildcards are literal
        ("xss_img", set()),  # "_" is no wildcard either
        ("' OR 1=1 --", set()),
        ('"; DROP TABLE runs; --', set()),
    ],
)
def test_search_matches_ids_inputs_and_outputs_literally(viewer, view_store, q, expected):
    found = {r["case_id"] for r in cases(viewer, view_store.new, q=q, limit=500)["rows"]}
    assert found == expected


def test_search_reads_the_output(viewer, view_store):
    hits = cases(viewer, view_store.new, q="__pwned=4")["rows"]
    assert [r["case_id"] for r in hits] == ["xss-textarea"]
    assert hits[0]["output"] == HOSTILE_OUTPUTS["xss-textarea"]


def test_case_table_sorts(viewer, view_store):
    by_id = [r["case_id"] for r in cases(viewer, view_store.new, sort="id", limit=500)["rows"]]
    assert by_id == sorted(c["id"] for c in CASES)
    desc = [r["case_id"] for r in cases(viewer, view_store.new, sort="id", order="desc")["rows"]]
    assert desc == sorted((c["id"] for c in CASES), reverse=True)
    by_status = cases(viewer, view_store.new, sort="status", limit=500)["rows"]
    assert [r["status"] for r in by_status] == sorted(r["status"] for r in by_status)
    costs = [
        r["cost_usd"] for r in cases(viewer, view_store.new, sort="cost", order="desc")["rows"]
    ]
    assert costs == sorted(costs, reverse=True)


@pytest.mark.parametrize("case_id", [*ODD_IDS, *HOSTILE_OUTPUTS, PLAIN[0]])
def test_every_case_id_round_trips_through_its_url(viewer, view_store, case_id):
    rows = cases(viewer, view_store.new, limit=500)["rows"]
    row = next(r for r in rows if r["case_id"] == case_id)
    detail = viewer.get(row["api"])
    assert detail.status == 200, (row["api"], detail.body)
    assert detail.json()["case"]["id"] == case_id
    page = viewer.get(row["url"].split("#")[0])
    assert page.status == 200
    assert "<script>" not in page.body.split("</head>")[1]  # every < of the data is escaped


def test_case_api_has_prompt_output_verdicts_tokens_and_cost(viewer, view_store):
    data = viewer.get(f"/api/runs/{view_store.new}/cases/xss-script").json()
    (epoch,) = data["epochs"]
    assert epoch["status"] == "fail"
    gen = epoch["generation"]
    assert gen["result"]["text"] == HOSTILE_OUTPUTS["xss-script"]
    assert gen["messages"][0]["content"].endswith("v2 <script>window.__pwned=8</script>")
    assert len(gen["prompt_sha256"]) == 64 and gen["result"]["output_tokens"] > 0
    assert gen["result"]["cost_usd"] > 0
    assert {s["grader"]: s["passed"] for s in epoch["scores"]} == {
        "contains": False,
        "rubric": True,
    }
    (grading,) = epoch["grading"]
    assert grading["grader"] == "rubric" and grading["system"][0]["text"].endswith("<b>ok</b>?")


def test_live_run_state(viewer, view_store):
    state = viewer.get(f"/api/runs/{view_store.live}/state").json()
    assert state["status"] == "generate" and state["terminal"] is False
    assert state["progress"]["generate"] == {"done": 0, "total": len(CASES)}
    assert [b["status"] for b in state["batches"]] == ["in_progress"]
    page = viewer.get(f"/runs/{view_store.live}")
    assert page.status == 200
    assert f'data-live="/api/runs/{view_store.live}/state"' in page.body
    assert '<noscript><meta http-equiv="refresh" content="10"></noscript>' in page.body
    assert cases(viewer, view_store.live, status="pending")["total"] == len(CASES)
    finished = viewer.get(f"/runs/{view_store.new}").body
    assert "data-live" not in finished and "http-equiv" not in finished


def test_compare_api_pairs_the_runs(viewer, view_store):
    data = viewer.get(f"/api/compare/{view_store.base}/{view_store.new}").json()
    assert {c["key"] for c in data["changes"]} >= {"generate.prompt"}
    regressed = {d["case_id"]: d["new_output"] for d in data["cases"] if d["change"] == "regressed"}
    assert regressed == HOSTILE_OUTPUTS
    page = viewer.get(f"/compare/{view_store.base}/{view_store.new}")
    assert page.status == 200 and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page.body
    picked = viewer.get(f"/compare?base={view_store.base}&new={view_store.new}")
    assert picked.status == 200 and "Paired statistics" in picked.body  # followed the redirect


@pytest.mark.parametrize(
    ("path", "status", "needle"),
    [
        ("/runs/no-such-run", 404, "no run"),
        ("/runs/no-such-run/cases/x", 404, "no run"),
        ("/runs/{new}/cases/no-such-case", 404, "has no case"),
        ("/runs/{new}?offset=-1", 400, "offset must be 0 or more"),
        ("/runs/{new}?limit=abc", 400, "limit must be an integer"),
        ("/runs/{new}?status=<script>", 400, "status must be one of"),
        ("/runs/{new}?sort=1;drop", 400, "sort must be one of"),
        ("/compare/{live}/{new}", 400, "not done"),
        ("/nowhere", 404, "Not Found"),
    ],
)
def test_bad_requests_get_a_page_and_the_api_json(viewer, view_store, path, status, needle):
    path = path.format(new=view_store.new, live=view_store.live)
    page = viewer.get(path)
    assert page.status == status and page.headers["content-type"].startswith("text/html")
    assert "<script>" not in page.body
    api = viewer.get("/api" + path)
    assert api.status == status
    assert needle in api.json()["error"]


def test_huge_limit_is_capped_and_hostile_query_values_are_refused(viewer, view_store):
    capped = cases(viewer, view_store.new, limit=10**12)
    assert capped["limit"] == MAX_LIMIT
    assert viewer.get(f"/api/runs/{view_store.new}/cases?q={quote(chr(0))}").status == 400
    assert viewer.get(f"/api/runs/{view_store.new}/cases?q={'x' * 201}").status == 400


def test_every_response_carries_the_strict_headers(viewer, view_store):
    for path in ("/runs", f"/runs/{view_store.new}", "/api/runs", "/static/view.js", "/nowhere"):
        headers = viewer.get(path).headers
        assert headers["content-security-policy"].startswith(
            "default-src 'none'; script-src 'self'"
        )
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
    assert viewer.get("/api/runs").headers["cache-control"] == "no-store"


def test_a_foreign_host_name_is_refused(viewer):
    """DNS rebinding: a page on evil.test that resolves to 127.0.0.1 must not read the API."""
    assert viewer.get("/api/runs", headers={"Host": "evil.test:8321"}).status == 400
    assert viewer.get("/api/runs", headers={"Host": "localhost"}).status == 200


def test_static_files_stay_in_their_folder(viewer):
    assert viewer.get("/static/../app.py").status == 404
    assert viewer.get("/static/%2e%2e/app.py").status == 404
    assert viewer.get("/static/view.css").status == 200
