#!/usr/bin/env bash
# Builds the web page (web/ -> api/static/): installs the locked npm packages, type-checks the
# TypeScript, and bundles it with esbuild. The built files are committed, so the api (and its
# Docker image) serves the page without Node.js; run this after changing anything in web/, and
# commit api/static/ with it (tests/unit/test_web_bundle.py fails when they disagree).
#
#   bash scripts/build-web.sh
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo/web"

command -v npm >/dev/null || { echo "build-web: npm is needed (Debian: apt-get install -y nodejs npm)" >&2; exit 1; }
# npm ci: exactly the versions in package-lock.json, every time.
npm ci --no-audit --no-fund --loglevel=error
npx --no-install tsc --noEmit -p .
node build.mjs
