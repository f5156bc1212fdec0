"""The FastAPI app: the JSON API (/api/...), the dashboard (/), live updates (/api/stream), OpenAPI docs (/docs)
and Prometheus metrics (/metrics). Every route needs the token (ops/api/auth.py); the dashboard's 401 page is
its login form. No CORS middleware: a page on another origin cannot call this API from a browser.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ops.api import metrics, views
from ops.api.auth import COOKIE
from ops.api.context import ApiContext
from ops.api.routes import build_router

DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard"
STREAM_POLL_S = 1.0  # how often the stream looks for journal writes
STREAM_PING_S = 15.0  # a comment line now and then keeps proxies from closing an idle stream


def create_app(ctx: ApiContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        ctx.close()  # the API's journal connection; the bot's own stays open

    app = FastAPI(title="Trading bot status and control API", version="1", lifespan=lifespan,
                  description="Status, positions, decisions and controls of the CombinedStrategy bot. Every "
                              "endpoint needs `Authorization: Bearer <API_TOKEN>`.", docs_url=None, redoc_url=None,
                  openapi_url=None)  # the schema and the docs are served below, behind the token
    auth = [Depends(ctx.guard.check)]

    @app.middleware("http")
    async def count(request: Request, call_next):
        response = await call_next(request)
        route = request.scope.get("route")
        ctx.requests[f"{request.method} {getattr(route, 'path', 'unmatched')} {response.status_code}"] += 1
        return response

    app.include_router(build_router(ctx), dependencies=auth)

    @app.get("/docs", include_in_schema=False, dependencies=auth)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Trading bot API")

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/metrics", include_in_schema=False, dependencies=auth)
    def prometheus() -> Response:
        body, content_type = metrics.render(ctx)
        return Response(body, media_type=content_type)

    @app.get("/api/stream", dependencies=auth, summary="Server-sent events: `change` whenever the journal changes")
    async def stream(request: Request) -> StreamingResponse:
        async def events():
            last, idle = None, 0.0
            yield "retry: 3000\n\n"
            while not await request.is_disconnected():
                marker = await run_in_threadpool(_marker, ctx)
                if marker != last:
                    yield f"event: change\ndata: {marker[0]}\n\n"
                    last, idle = marker, 0.0
                elif idle >= STREAM_PING_S:
                    yield ": ping\n\n"
                    idle = 0.0
                await asyncio.sleep(STREAM_POLL_S)
                idle += STREAM_POLL_S

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def dashboard(request: Request) -> Response:
        try:
            ctx.guard.check(request)
        except HTTPException as exc:
            if exc.status_code == 429:
                raise
            return HTMLResponse(_page("login.html"), status_code=401)
        return HTMLResponse(_page("index.html"))

    @app.post("/login", include_in_schema=False)
    def login(request: Request, token: str = Form(...)) -> Response:
        if not ctx.guard.login(request, token):
            return HTMLResponse(_page("login.html").replace("<!--error-->", "<p class=error>Wrong token.</p>"),
                                status_code=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, ctx.guard.session, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    @app.post("/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/static/{name}", include_in_schema=False, dependencies=auth)
    def static(name: str) -> Response:
        if name == "plotly.min.js":  # shipped inside the plotly package: no CDN, no Node build
            return FileResponse(str(files("plotly") / "package_data" / "plotly.min.js"),
                                media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})
        if name in ("dashboard.js", "dashboard.css"):
            return FileResponse(DASHBOARD / name)
        return JSONResponse({"detail": "not found"}, status_code=404)

    return app


def _marker(ctx: ApiContext) -> tuple:
    with ctx.journal() as j:
        return views.change_marker(j)


def _page(name: str) -> str:
    return (DASHBOARD / name).read_text()
