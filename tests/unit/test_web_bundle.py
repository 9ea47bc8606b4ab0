"""The committed web bundle (api/static/) is the build of the committed sources (web/).

web/build.mjs records a hash of its inputs in api/static/build-info.json; this recomputes it the
same way, so changing web/ without rebuilding (bash scripts/build-web.sh) fails here. It also
checks what the page loads: only its own files, named by their content hashes."""

import hashlib
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "web"
STATIC = REPO / "api" / "static"
# web/build.mjs's inputs: everything in src/, and these.
BUILD_FILES = ("build.mjs", "package.json", "package-lock.json", "tsconfig.json")


def source_hash() -> str:
    """The recipe of sourceHash() in web/build.mjs."""
    names = sorted(
        [path.relative_to(WEB).as_posix() for path in (WEB / "src").rglob("*") if path.is_file()] + list(BUILD_FILES)
    )
    listing = "".join(f"{name}\0{hashlib.sha256((WEB / name).read_bytes()).hexdigest()}\n" for name in names)
    return hashlib.sha256(listing.encode()).hexdigest()


def test_the_committed_bundle_is_built_from_the_committed_sources() -> None:
    recorded = json.loads((STATIC / "build-info.json").read_text())["source_sha256"]
    assert recorded == source_hash(), "web/ changed since api/static/ was built: run bash scripts/build-web.sh"


def test_the_page_loads_only_its_own_files_named_by_content() -> None:
    html = (STATIC / "index.html").read_text()
    references = re.findall(r'(?:src|href)="(/static/[^"?]+)\?v=([0-9a-f]{12})"', html)
    assert sorted(name for name, _ in references) == ["/static/app.css", "/static/app.js"]
    for name, version in references:
        content = (STATIC / name.removeprefix("/static/")).read_bytes()
        assert hashlib.sha256(content).hexdigest()[:12] == version
    # Nothing from elsewhere at run time: no script, style sheet or fetch from another host.
    assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', html)
    bundle = (STATIC / "app.js").read_text()
    assert not re.search(r"""(fetch|import|EventSource)\(\s*["'`]https?://""", bundle)
