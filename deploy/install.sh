#!/bin/sh
# Install (or upgrade) the sitewatch gateway on Raspberry Pi OS / Debian 12 (bookworm). Idempotent: a
# second run with the same checkout changes nothing, and an operator's /etc/sitewatch/gateway.toml is
# never overwritten.
#
#   sudo deploy/install.sh                 # from a checkout, onto this machine
#   deploy/install.sh --root /tmp/staging  # into a staging root (tests; its etc/passwd must exist)
#
# What it does, under the root (default /):
#   system user and group `sitewatch` (no login, home /var/lib/sitewatch)
#   /opt/sitewatch/.venv           a venv with sitewatch pip-installed from this checkout
#   /opt/sitewatch/docs            the documentation the unit's Documentation= points at
#   /etc/sitewatch/gateway.toml    a sample configuration, only if there is none (0640 root:sitewatch)
#   /etc/sitewatch/credentials/    secrets for LoadCredential= (0700 root)
#   /var/lib/sitewatch             the state directory (0750 sitewatch)
#   /etc/systemd/system/sitewatch-gateway.service, /etc/udev/rules.d/99-sitewatch-rs485.rules
# On the live system (no --root) it then reloads systemd and udev if their files changed; it does not
# start the service: check the configuration first (docs/operator-guide.md).
#
# Options: --root DIR, --source DIR (the checkout; default: this script's), --python PROGRAM (default python3).
set -eu

ROOT=""
SOURCE=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
PYTHON=python3
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=${2%/}; shift 2 ;;
        --source) SOURCE=$2; shift 2 ;;
        --python) PYTHON=$2; shift 2 ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

USER_NAME=sitewatch
PREFIX="$ROOT/opt/sitewatch"
CHANGED=0

say() { echo "install.sh: $*"; }
fail() { echo "install.sh: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root (sudo): it creates a system user and writes under /etc and /opt"
[ -f "$SOURCE/pyproject.toml" ] && [ -d "$SOURCE/gateway" ] || fail "$SOURCE is not a sitewatch checkout (--source)"
[ -f "$ROOT/etc/passwd" ] || fail "$ROOT/etc/passwd is missing: --root must be a system root with etc/passwd and etc/group"
command -v "$PYTHON" >/dev/null || fail "$PYTHON not found: apt-get install python3 python3-venv"

# --- the user ------------------------------------------------------------------------------------
if ! grep -q "^$USER_NAME:" "$ROOT/etc/passwd"; then
    if [ -n "$ROOT" ]; then PREFIX_OPT="--prefix $ROOT"; else PREFIX_OPT=""; fi
    # shellcheck disable=SC2086 # PREFIX_OPT is two words or none
    useradd $PREFIX_OPT --system --user-group --home-dir /var/lib/sitewatch --no-create-home \
        --shell /usr/sbin/nologin --comment "sitewatch gateway" "$USER_NAME"
    say "created system user $USER_NAME"
    CHANGED=1
fi
# Numeric ids from the root's own files: under --root the host may not know the user.
USER_ID=$(awk -F: -v u="$USER_NAME" '$1 == u { print $3 }' "$ROOT/etc/passwd")
GROUP_ID=$(awk -F: -v u="$USER_NAME" '$1 == u { print $4 }' "$ROOT/etc/passwd")

# --- folders and files, each only when it differs ------------------------------------------------
# directory PATH MODE OWNER:GROUP (numeric)
directory() {
    if [ ! -d "$1" ]; then
        install -d -m "$2" -o "${3%:*}" -g "${3#*:}" "$1"
        say "created $1"
        CHANGED=1
    elif [ "$(stat -c '%a %u:%g' "$1")" != "$(printf '%o' "0$2") $3" ]; then
        chmod "$2" "$1"
        chown "$3" "$1"
        say "fixed the mode or owner of $1"
        CHANGED=1
    fi
}

# file SOURCE TARGET MODE OWNER:GROUP [keep]: copy when missing or different ("keep": only when missing)
file() {
    if [ -f "$2" ] && { [ "${5:-}" = keep ] || cmp -s "$1" "$2"; }; then
        return 0
    fi
    install -m "$3" -o "${4%:*}" -g "${4#*:}" "$1" "$2"
    say "installed $2"
    CHANGED=1
}

directory "$ROOT/opt" 755 0:0
directory "$PREFIX" 755 0:0
directory "$ROOT/etc/sitewatch" 750 "0:$GROUP_ID"
directory "$ROOT/etc/sitewatch/credentials" 700 0:0
directory "$ROOT/var/lib/sitewatch" 750 "$USER_ID:$GROUP_ID"
directory "$ROOT/etc/systemd/system" 755 0:0
directory "$ROOT/etc/udev/rules.d" 755 0:0

# --- the venv and the package --------------------------------------------------------------------
if [ ! -x "$PREFIX/.venv/bin/python" ]; then
    "$PYTHON" -m venv "$PREFIX/.venv"
    say "created the venv $PREFIX/.venv"
    CHANGED=1
fi
# What is installed is named by a digest of the checkout's sources: pip runs again only when they change.
DIGEST=$(cd "$SOURCE" && find pyproject.toml gateway firmware simulator -type f \
    \( -name '*.py' -o -name '*.toml' -o -name '*.json' \) -not -path '*/__pycache__/*' | LC_ALL=C sort \
    | xargs sha256sum | sha256sum | cut -d' ' -f1)
if [ "$(cat "$PREFIX/.installed-from" 2>/dev/null || true)" != "$DIGEST" ]; then
    # Dependencies as needed, then this checkout's code even when its version number did not change.
    "$PREFIX/.venv/bin/pip" install --quiet --disable-pip-version-check "$SOURCE"
    "$PREFIX/.venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$SOURCE"
    echo "$DIGEST" > "$PREFIX/.installed-from"
    say "installed sitewatch from $SOURCE into $PREFIX/.venv"
    CHANGED=1
fi
directory "$PREFIX/docs" 755 0:0
for doc in "$SOURCE"/docs/*.md; do
    file "$doc" "$PREFIX/docs/$(basename "$doc")" 644 0:0
done

# --- configuration, unit, udev rule --------------------------------------------------------------
file "$SOURCE/deploy/gateway.example.toml" "$ROOT/etc/sitewatch/gateway.example.toml" 640 "0:$GROUP_ID"
file "$SOURCE/deploy/gateway.example.toml" "$ROOT/etc/sitewatch/gateway.toml" 640 "0:$GROUP_ID" keep
UNIT_BEFORE=$CHANGED; CHANGED=0
file "$SOURCE/deploy/sitewatch-gateway.service" "$ROOT/etc/systemd/system/sitewatch-gateway.service" 644 0:0
UNIT_CHANGED=$CHANGED; CHANGED=0
file "$SOURCE/deploy/99-sitewatch-rs485.rules" "$ROOT/etc/udev/rules.d/99-sitewatch-rs485.rules" 644 0:0
RULE_CHANGED=$CHANGED
CHANGED=$((UNIT_BEFORE | UNIT_CHANGED | RULE_CHANGED))

if [ -z "$ROOT" ]; then
    if [ "$UNIT_CHANGED" -eq 1 ] && [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        say "systemd reloaded; restart the running gateway to use the new unit: systemctl restart sitewatch-gateway"
    fi
    if [ "$RULE_CHANGED" -eq 1 ] && command -v udevadm >/dev/null; then
        udevadm control --reload && udevadm trigger --subsystem-match=tty
    fi
fi

if [ "$CHANGED" -eq 0 ]; then
    say "nothing changed"
else
    say "done. Next: edit $ROOT/etc/sitewatch/gateway.toml, then" \
        "$PREFIX/.venv/bin/sitewatch config check /etc/sitewatch/gateway.toml" \
        "&& systemctl enable --now sitewatch-gateway"
fi
