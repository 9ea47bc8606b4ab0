"""The web page: `/` and its static files (built from web/ by scripts/build-web.sh, committed, so
the api serves them without Node.js)."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    # Revalidated on every load: it names the bundle by its content hash, so a new build is
    # picked up at once while the bundle itself stays cached.
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)
