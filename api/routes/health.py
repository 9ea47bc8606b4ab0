"""Liveness and readiness."""

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import DbConnection

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready")
def ready(connection: DbConnection) -> dict[str, str]:
    """The database answers (a 503 comes from the app's database error handler otherwise)."""
    connection.execute(text("SELECT 1"))
    return {"status": "ready"}
