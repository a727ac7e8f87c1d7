#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, only those missing.
# Each entry: command-that-proves-it-is-installed:debian-package
set -euo pipefail

needed=(
  "mbpoll:mbpoll"
  "mosquitto:mosquitto"
  "mosquitto_passwd:mosquitto"
  "openssl:openssl"
  "influxd:influxdb"
  "victoria-metrics:victoria-metrics"
  "node:nodejs"
  "npm:npm"
  "systemd-analyze:systemd"
  "chromium:chromium"
  "pdftoppm:poppler-utils"
  "stress-ng:stress-ng"  # docs/testing.md: the whole suite passes while it keeps both cores busy
)
missing=()
for entry in "${needed[@]}"; do
  cmd=${entry%%:*}
  pkg=${entry#*:}
  # Debian installs some daemons outside a normal user's PATH.
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/usr/bin/$cmd" ]; then
    missing+=("$pkg")
  fi
done
# `sitewatch report` draws Chinese text with a CJK font from Debian (gateway/report/fonts.py).
if [ ! -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then
  missing+=("fonts-wqy-microhei")
fi
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=("python3-venv")
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "installing Debian packages: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "error: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# The packaged daemons try to start at install; the tests start their own
# instances on free loopback ports, so a refused start is harmless.
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
