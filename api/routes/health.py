"""Liveness, readiness and metrics."""

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.deps import DbConnection
from api.metrics import exposition_registry, store_exposition

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "the database does not answer"}})
async def ready(connection: DbConnection) -> dict[str, str]:
    """The database answers (a 503 comes from the app's database error handler otherwise)."""
    await connection.execute(text("SELECT 1"))
    return {"status": "ready"}


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """Prometheus text format: requests by route and status, latency histograms, pool use, the store's freshness."""
    requests = generate_latest(exposition_registry(request.app.state.registry))
    return Response(requests + await store_exposition(request.app.state.engine), media_type=CONTENT_TYPE_LATEST)
