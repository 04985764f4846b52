"""The explorer web app: server-rendered pages (Jinja2, enhanced by htmx) and a JSON API under
/api that mirrors each page, with OpenAPI docs at /docs.

Routes only parse, call one `Explorer` method and render; one exception handler maps every
error to a status and a clear page (or JSON) — never a stack trace. Every page works without
JavaScript; scripts and styles come from this app only (see `assets.py`), never from a CDN.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from aicommons.commit import JsonInputError
from aicommons.errors import AicommonsError
from aicommons.explorer.assets import STATIC_DIR
from aicommons.explorer.errors import BadRequest, NotFound, PayloadTooLarge
from aicommons.explorer.views import (
    HEALTH_TTL_S,
    UPLOAD_MAX_BYTES,
    Explorer,
    PageCache,
    parse_receipt_upload,
)

logger = logging.getLogger(__name__)

SECURITY_HEADERS = {
    # Only this origin's scripts and styles: the vendored htmx and Chart.js, our app.js/app.css.
    "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
FORM_OVERHEAD_BYTES = 64 * 1024
"""Room for multipart headers and the other form fields around an uploaded receipt."""


def error_status(exc: BaseException) -> int:
    """The HTTP status of an error: the one place routes' failures are mapped."""
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code
    if isinstance(exc, PayloadTooLarge):
        return 413
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, RequestValidationError):
        return 422
    if isinstance(exc, BadRequest | JsonInputError | AicommonsError):
        return 400
    return 500


def error_message(exc: BaseException) -> str:
    if isinstance(exc, StarletteHTTPException):
        return str(exc.detail)
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"invalid {where}: {first.get('msg', 'bad value')}"
    if error_status(exc) == 500:
        return "internal error: the explorer could not build this page (see its log)"
    return (str(exc) or type(exc).__name__).splitlines()[0][:300]


def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("aicommons.explorer", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["short"] = lambda value, n=10: (
        value if not isinstance(value, str) or len(value) <= 2 * n + 1 else f"{value[:n]}…"
    )
    return env


def create_app(explorer: Explorer) -> FastAPI:
    """The explorer's ASGI app over an `Explorer` (index + SDK client)."""
    app = FastAPI(
        title="aicommons explorer",
        description="Models, versions, inferences, storage, market and governance, "
        "from the indexed chain. Every page has a JSON twin under /api.",
        docs_url=None,
        redoc_url=None,
    )
    templates = _templates()
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    rendered = PageCache()

    def render_text(template: str, data: Any) -> str:
        return templates.get_template(template).render(data=data, contracts=_contracts(explorer))

    def render(template: str, data: Any, status: int = 200) -> HTMLResponse:
        return HTMLResponse(render_text(template, data), status_code=status)

    def page(path: str, template: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register `function` as GET /api{path} (JSON) and GET {path} (the HTML page)."""

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            app.get("/api" + path, name="api_" + function.__name__)(function)

            @functools.wraps(function)
            def html(*args: Any, **kwargs: Any) -> HTMLResponse:
                # A page is a function of its parameters and the indexed height (and of storage
                # health, re-asked every HEALTH_TTL_S): render it once per such state.
                stamp = (explorer.height, int(time.monotonic() // HEALTH_TTL_S))
                key = (template, args, tuple(sorted(kwargs.items())))
                body = rendered.get(
                    key, stamp, lambda: render_text(template, function(*args, **kwargs))
                )
                return HTMLResponse(body)

            app.get(path, response_class=HTMLResponse, include_in_schema=False)(html)
            return function

        return register

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        return response

    async def handle(request: Request, exc: Exception) -> Response:
        status = error_status(exc)
        if status == 500:
            logger.exception("explorer: %s %s failed", request.method, request.url.path)
        message = error_message(exc)
        if request.url.path.startswith("/api"):
            return JSONResponse({"error": message, "status": status}, status_code=status)
        return render("error.html", {"status": status, "message": message}, status)

    # Expected errors are answered inside the app; a bare Exception handler alone would sit in
    # Starlette's outermost middleware, which answers and then re-raises (a traceback in the
    # server log for every unknown id).
    app.add_exception_handler(AicommonsError, handle)
    app.add_exception_handler(Exception, handle)
    app.add_exception_handler(StarletteHTTPException, handle)
    app.add_exception_handler(RequestValidationError, handle)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="aicommons explorer API",
            swagger_js_url="/static/vendor/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )
        # Swagger UI starts from an inline script; only this page allows one.
        page.headers["content-security-policy"] = (
            "default-src 'self'; img-src 'self' data:; script-src 'self' 'unsafe-inline'; "
            "style-src 'self' 'unsafe-inline'; object-src 'none'; frame-ancestors 'none'"
        )
        return page

    @page("/", "home.html")
    def home() -> dict[str, Any]:
        """Network summary: chain, models, versions, inferences per day, fees, stake."""
        return explorer.home()

    @page("/models", "models.html")
    def models(q: str = "", licence: str = "", placement: str = "", mode: str = "") -> Any:
        """Models, searchable by name and filtered by licence, placement and mode."""
        return explorer.models(search=q, licence=licence, placement=placement, mode=mode)

    @page("/models/{name}", "model.html")
    def model(name: str) -> dict[str, Any]:
        """One model: its versions, usage and fees."""
        return explorer.model(name)

    @page("/models/{name}/versions/{version_id}", "version.html")
    def version(name: str, version_id: str) -> dict[str, Any]:
        """One version: manifest summary, attribution, storage health, usage, how to call it."""
        return explorer.version(name, version_id)

    @page("/inferences/{tx_hash}", "inference.html")
    def inference(tx_hash: str) -> dict[str, Any]:
        """An inference receipt and the live result of every `aic verify` check."""
        return explorer.inference(tx_hash)

    @app.get("/inferences/{tx_hash}/receipt.json", tags=["receipts"])
    def receipt_download(tx_hash: str) -> JSONResponse:
        """The receipt as `aic verify` reads it, as a download."""
        receipt = explorer.receipt(tx_hash)
        return JSONResponse(
            receipt.to_json(),
            headers={"content-disposition": f'attachment; filename="{receipt.tx_hash}.json"'},
        )

    @app.get("/verify", response_class=HTMLResponse, include_in_schema=False)
    def verify_form() -> HTMLResponse:
        return render("verify.html", {"limit": UPLOAD_MAX_BYTES})

    async def uploaded_receipt(request: Request) -> bytes:
        """The receipt bytes of a form post (file or pasted text) or of a raw JSON body,
        refused by its declared size before anything is read."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > UPLOAD_MAX_BYTES + FORM_OVERHEAD_BYTES:
            raise PayloadTooLarge(
                f"upload is {int(declared)} bytes; a receipt may be at most {UPLOAD_MAX_BYTES}"
            )
        kind = request.headers.get("content-type", "")
        if kind.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form(max_files=1, max_fields=4, max_part_size=UPLOAD_MAX_BYTES)
            upload = form.get("receipt_file")
            if upload is not None and not isinstance(upload, str):
                data = await upload.read(UPLOAD_MAX_BYTES + 1)
                if data:
                    return data
            text = form.get("receipt_text")
            return text.encode() if isinstance(text, str) else b""
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > UPLOAD_MAX_BYTES:
                break
        return body

    @app.post("/verify", response_class=HTMLResponse, include_in_schema=False)
    async def verify_upload(request: Request) -> HTMLResponse:
        data = await uploaded_receipt(request)
        parse_receipt_upload(data)  # refuse a bad upload before the worker thread is taken
        result = await _in_thread(explorer.verify_upload, data)
        return render("verify.html", {"limit": UPLOAD_MAX_BYTES, **result})

    @app.post("/api/verify", tags=["receipts"])
    async def api_verify(request: Request) -> dict[str, Any]:
        """Verify a receipt (the JSON body, or a form with `receipt_file`/`receipt_text`)."""
        return await _in_thread(explorer.verify_upload, await uploaded_receipt(request))

    @page("/storage", "storage.html")
    def storage() -> dict[str, Any]:
        """Storage providers: stake, blobs, challenges passed and failed."""
        return explorer.storage()

    @page("/market", "market.html")
    def market() -> dict[str, Any]:
        """Compute market: requests, providers, disputes (if the market is deployed)."""
        return explorer.market()

    @page("/market/requests/{request_id}", "request.html")
    def market_request(request_id: str) -> dict[str, Any]:
        """One market request: what was asked, its status, every event naming it in order."""
        return explorer.market_request(request_id)

    @page("/market/disputes/{dispute_id}", "dispute.html")
    def market_dispute(dispute_id: str) -> dict[str, Any]:
        """One dispute, round by round: challenge, reveals and picks, verdict or timeout."""
        return explorer.market_dispute(dispute_id)

    @page("/governance", "governance.html")
    def governance() -> dict[str, Any]:
        """Proposals and funding rounds (if governance is deployed)."""
        return explorer.governance()

    @page("/governance/proposals/{proposal_id}", "proposal.html")
    def proposal(proposal_id: str) -> dict[str, Any]:
        """One proposal: actions, live state, tally; created, votes, queued, executed/canceled."""
        return explorer.proposal(proposal_id)

    @page("/governance/rounds/{round_id}", "round.html")
    def funding_round(round_id: str) -> dict[str, Any]:
        """One funding round: contributions, the match projected if it closed now, settlement."""
        return explorer.funding_round(round_id)

    @page("/contracts/{name}", "contract.html")
    def contract(name: str) -> dict[str, Any]:
        """The latest events of one deployed contract."""
        return explorer.contract_events(name)

    @page("/tx/{tx_hash}", "transaction.html")
    def transaction(tx_hash: str) -> dict[str, Any]:
        """The indexed events of one transaction."""
        return explorer.transaction(tx_hash)

    return app


def _contracts(explorer: Explorer) -> dict[str, str]:
    try:
        return explorer.contracts
    except Exception:  # the error page must render even when the deployment cannot be read
        return {}


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    from fastapi.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)
