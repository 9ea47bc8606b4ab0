#!/usr/bin/env bash
# Pins every dependency: one lock file per dependency group of pyproject.toml, in requirements/.
# The Docker images install their service's lock (and nothing else); scripts/setup.sh installs
# dev.lock. Run after changing dependencies in pyproject.toml:
#
#   bash scripts/lock.sh            # needs the dev venv (scripts/setup.sh), which has uv
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
uv=${UV:-.venv/bin/uv}
for group in producer consumer api bootstrap fake-binance replay dev; do
    # --python-version: the images' and CI's Python, whatever runs this script.
    "$uv" pip compile pyproject.toml --quiet --extra "$group" --python-version 3.11 \
        --no-header --annotation-style line --output-file "requirements/$group.lock"
    echo "lock: requirements/$group.lock ($(grep -c '==' "requirements/$group.lock") packages)"
done
