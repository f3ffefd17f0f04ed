#!/bin/sh
# What tests/test_web_e2e.py needs: Debian's Chromium (system browser, ~20 s) and Playwright's
# Python package (drives that browser; no `playwright install`, which cannot download here).
set -eu
VENV=${VENV:-.venv}
if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
"$VENV/bin/pip" install -q playwright
chromium --version 2>/dev/null | head -n 1
