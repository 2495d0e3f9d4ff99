"""The viewer's web app (starlette): read-only routes for the pages and their JSON mirrors, the
static assets, and the headers every response carries (a strict CSP, no sniffing, no framing).

    /runs                        the suites' history and every run    /api/runs
    /runs/ID                     a run: summary and its case table     /api/runs/ID, /api/runs/ID/cases
    /runs/ID/cases/CASE          one case                              /api/runs/ID/cases/CASE
    /compare/A/B                 two runs, paired                      /api/compare/A/B
    /sweeps, /sweeps/ID          sweeps, and one's table               /api/sweeps, /api/sweeps/ID
    /api/runs/ID/state           where a run in flight stands (what the live pages poll)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..analysis.sweep import sweep_table
from ..errors import EvalbatchError, InputError, NotFound
from ..records import FINAL_REQUEST, TERMINAL_RUN
from ..report.sweep import cost_chart, recommendation
from ..report.wording import numeric_lines, scope_notes
from ..store.browse_records import CASE_STATUSES
from ..store.db import Store
from ..store.records import RunState
from . import links, pages
from .cache import ViewCache
from .params import DEFAULT_LIMIT, case_query, is_filtered, query_string
from .render import compile_templates, render

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class SecurityHeaders:
    """Every response: the CSP (scripts, styles, fetches only from this server), nosniff, no
    framing, no referrer; API answers are never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Cross-Origin-Resource-Policy"] = "same-origin"
                if str(scope.get("path", "")).startswith("/api/"):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _html(template: str, code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("live", None)
    context.setdefault("refresh", False)
    return HTMLResponse(render(template, **context), status_code=code)


def progress(state: RunState, step: str) -> str:
    counts = state.requests.get(step) or {}
    total = sum(counts.values())
    done = sum(n for status, n in counts.items() if status in FINAL_REQUEST)
    return f"{done:,} / {total:,}" if total else "-"


def state_json(state: RunState) -> dict[str, Any]:
    progress_of = {}
    for step, counts in state.requests.items():
        done = sum(n for status, n in counts.items() if status in FINAL_REQUEST)
        progress_of[step] = {"done": done, "total": sum(counts.values())}
    return {**asdict(state), "progress": progress_of, "terminal": state.status in TERMINAL_RUN}


class Views:
    """The route handlers. Each reads through the store's typed queries (via the cache)."""

    def __init__(self, store: Store) -> None:
        self.cache = ViewCache(store)
        self.store = store

    # -- runs ---------------------------------------------------------------------------------

    def runs(self, request: Request) -> Response:
        page = pages.runs_page(self.cache)
        return _html("runs.html.j2", page=page, progress=progress, refresh=bool(page.live))

    def runs_api(self, request: Request) -> Response:
        return _json(pages.runs_json(pages.runs_page(self.cache)))

    # -- a run --------------------------------------------------------------------------------

    def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        query = case_query(request.query_params)
        page = pages.run_page(self.cache, run_id, query)
        costs = [(f"{c.step} · {c.model}", c.cost) for c in page.summary.costs]
        last = max(0, (page.cases.total - 1) // query.limit * query.limit)
        return _html(
            "run.html.j2",
            page=page,
            run=page.summary.run,
            summary=page.summary,
            query=query,
            cases=page.cases,
            filtered=is_filtered(query),
            statuses=CASE_STATUSES,
            default_limit=DEFAULT_LIMIT,
            cost_bars=costs,
            last_offset=last,
            qs=lambda **changes: query_string(query, **changes),
            sort_link=lambda key, label: _sort_link(query, key, label),
            live=links.state_url(run_id) if page.live else None,
            refresh=page.live,
        )

    def run_api(self, request: Request) -> Response:
        query = case_query(request.query_params)
        return _json(
            pages.run_json(pages.run_page(self.cache, request.path_params["run_id"], query))
        )

    def state_api(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        self.store.runs.get(run_id)  # NotFound
        return _json(state_json(self.store.history.run_state(run_id)))

    def cases_api(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        query = case_query(request.query_params)
        self.store.runs.get(run_id)  # NotFound
        cases = self.store.browse.case_page(run_id, query)
        more = query.offset + query.limit < cases.total
        next_qs = query_string(query, offset=query.offset + query.limit) if more else None
        return _json(pages.cases_json(run_id, cases, next_qs))

    def cases_redirect(self, request: Request) -> Response:
        url = links.run_url(request.path_params["run_id"])
        return RedirectResponse(f"{url}?{request.url.query}#cases", status_code=303)

    # -- a case -------------------------------------------------------------------------------

    def _case_id(self, request: Request) -> str:
        if "case_id" in request.path_params:
            return str(request.path_params["case_id"])
        if "id" not in request.query_params:
            raise InputError("which case? /runs/ID/cases/CASE, or /runs/ID/case?id=CASE")
        return request.query_params["id"]

    def case(self, request: Request) -> Response:
        detail = self.store.browse.case_detail(
            request.path_params["run_id"], self._case_id(request)
        )
        return _html("case.html.j2", detail=detail)

    def case_api(self, request: Request) -> Response:
        detail = self.store.browse.case_detail(
            request.path_params["run_id"], self._case_id(request)
        )
        return _json(pages.case_json(detail))

    # -- compare ------------------------------------------------------------------------------

    def sweeps(self, request: Request) -> Response:
        return _html("sweeps.html.j2", sweeps=self.store.sweeps.listing())

    def sweeps_api(self, request: Request) -> Response:
        return _json([asdict(s) for s in self.store.sweeps.listing()])

    def sweep(self, request: Request) -> Response:
        table = sweep_table(self.store, self.store.sweeps.get(request.path_params["sweep_id"]).id)
        return _html(
            "sweep.html.j2", table=table, chart=cost_chart(table), note=recommendation(table)
        )

    def sweep_api(self, request: Request) -> Response:
        table = sweep_table(self.store, self.store.sweeps.get(request.path_params["sweep_id"]).id)
        return _json(table.to_dict())

    def compare_pick(self, request: Request) -> Response:
        base, new = request.query_params.get("base"), request.query_params.get("new")
        if base and new:
            return RedirectResponse(links.compare_url(base, new), status_code=303)
        runs = [r for r in self.cache.listing() if r.status == "done"]
        message = "Pick a base run and a new run." if (base or new) else None
        return _html("compare_pick.html.j2", runs=runs, base=base, new=new, message=message)

    def compare(self, request: Request) -> Response:
        cmp = pages.compare_page(
            self.cache, request.path_params["base"], request.path_params["new"]
        )
        return _html("compare.html.j2", cmp=cmp, notes=scope_notes(cmp), numeric=numeric_lines(cmp))

    def compare_api(self, request: Request) -> Response:
        cmp = pages.compare_page(
            self.cache, request.path_params["base"], request.path_params["new"]
        )
        return _json(cmp.to_dict())


def _sort_link(query: Any, key: str, label: str) -> str:
    """The header link that sorts by ``key`` (again: the other way), as escaped HTML."""
    descending = not query.descending if query.sort == key else key in ("cost", "tokens")
    mark = (" ▼" if query.descending else " ▲") if query.sort == key else ""
    href = "?" + query_string(query, sort=key, descending=descending, offset=0) + "#cases"
    return Markup(f'<a href="{escape(href)}">{escape(label)}{mark}</a>')


def _error_handler(request: Request, exc: Exception) -> Response:
    status, title = 500, "error"
    message = "the viewer failed on this request; see its log"
    if isinstance(exc, HTTPException):
        status, title, message = exc.status_code, "error", str(exc.detail)
    elif isinstance(exc, NotFound):
        status, title, message = 404, "not found", str(exc)
    elif isinstance(exc, InputError):
        status, title, message = 400, "bad request", str(exc)
    elif isinstance(exc, EvalbatchError):
        status, title, message = 503, "store unavailable", str(exc)
    if request.url.path.startswith("/api/"):
        return _json({"error": message, "status": status}, status)
    return _html("error.html.j2", status, status=status, title=title, message=message)


def create_app(store: Store, allowed_hosts: Sequence[str] | None = LOOPBACK_HOSTS) -> Starlette:
    """The app over ``store``. ``allowed_hosts`` guards against DNS rebinding (a web page
    that resolves its own name to 127.0.0.1 to read the API); None allows any host."""
    compile_templates()
    v = Views(store)

    def get(path: str, fn: Callable[[Request], Response]) -> Route:
        return Route(path, fn, methods=["GET", "HEAD"])

    routes = [
        get("/", lambda request: RedirectResponse("/runs", status_code=307)),
        get("/runs", v.runs),
        get("/runs/{run_id}", v.run),
        get("/runs/{run_id}/cases", v.cases_redirect),
        get("/runs/{run_id}/case", v.case),
        get("/runs/{run_id}/cases/{case_id:path}", v.case),
        get("/sweeps", v.sweeps),
        get("/sweeps/{sweep_id}", v.sweep),
        get("/compare", v.compare_pick),
        get("/compare/{base}/{new}", v.compare),
        get("/api/runs", v.runs_api),
        get("/api/runs/{run_id}", v.run_api),
        get("/api/runs/{run_id}/state", v.state_api),
        get("/api/runs/{run_id}/cases", v.cases_api),
        get("/api/runs/{run_id}/case", v.case_api),
        get("/api/runs/{run_id}/cases/{case_id:path}", v.case_api),
        get("/api/compare/{base}/{new}", v.compare_api),
        get("/api/sweeps", v.sweeps_api),
        get("/api/sweeps/{sweep_id}", v.sweep_api),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts is not None:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    handlers: dict[Any, Any] = {
        HTTPException: _error_handler,
        EvalbatchError: _error_handler,
        Exception: _error_handler,
    }
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)
    app.state.views = v
    return app
