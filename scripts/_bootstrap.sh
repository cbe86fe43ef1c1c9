# shellcheck shell=bash
# Sourced by scripts/dev and scripts/test: go to the repository root, make sure .venv holds
# the project (reinstalled only when pyproject.toml changed) and that RabbitMQ answers.
# After this: cwd is the repo root, .venv/bin is first on PATH, $NOTIFY_PY is the venv python.

set -euo pipefail

NOTIFY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$NOTIFY_ROOT"

_bs_say() { printf '==> %s\n' "$*" >&2; }
_bs_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}
_bs_apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
_bs_is_debian_root() { [ "$(id -u)" -eq 0 ] && [ -f /etc/debian_version ]; }

# Prints the first interpreter that is Python >= 3.11.
_bs_find_python() {
    local candidate
    for candidate in python3 python3.13 python3.12 python3.11 python; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

_bs_ensure_venv() {
    local py
    if [ -e .venv ]; then
        if ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
            _bs_die ".venv exists but its python is missing or older than 3.11; remove it (rm -rf .venv) and re-run"
        fi
        return 0
    fi
    if ! py="$(_bs_find_python)"; then
        _bs_die "no Python >= 3.11 found (tried python3, python3.13, python3.12, python3.11, python).
  Install one, e.g.: sudo apt-get install -y python3 python3-venv   (Debian 12+ / Ubuntu 24.04+)
                 or: pyenv install 3.11 && pyenv local 3.11"
    fi
    _bs_say "creating .venv with $py ($("$py" -c 'import platform; print(platform.python_version())'))"
    "$py" -m venv .venv || _bs_die "could not create .venv (on Debian/Ubuntu: sudo apt-get install -y python3-venv)"
}

_bs_ensure_installed() {
    local stamp=.venv/.notify-pyproject.sha256 want have="" log
    want="$(.venv/bin/python -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' pyproject.toml)"
    [ -f "$stamp" ] && have="$(cat "$stamp")"
    [ "$want" = "$have" ] && return 0
    _bs_say "installing the project into .venv (pyproject.toml changed)"
    log="$(mktemp)"
    if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        _bs_die "pip install -e '.[dev]' failed (output above)"
    fi
    # pip can report errors (e.g. dependency conflicts) and still exit 0: show those.
    if grep -q '^ERROR' "$log"; then cat "$log" >&2; fi
    rm -f "$log"
    printf '%s\n' "$want" >"$stamp"
}

# Prints "host port" from RABBITMQ_URL (default amqp://guest:guest@127.0.0.1:5672/); of its
# first node when it lists a cluster's nodes, comma-separated.
_bs_rabbitmq_address() {
    .venv/bin/python - "${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/}" <<'PY'
import sys
from urllib.parse import urlsplit

url = urlsplit(sys.argv[1].split(",")[0].strip())
default = 5671 if url.scheme == "amqps" else 5672
print(url.hostname or "127.0.0.1", url.port or default)
PY
}

# Succeeds when host:port speaks AMQP 0-9-1 (answers the protocol header with a frame), so a
# port that merely accepts connections (another service, a proxy) does not count.
_bs_amqp_answers() {
    .venv/bin/python - "$1" "$2" <<'PY'
import socket
import sys

try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as sock:
        sock.settimeout(3)
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        sys.exit(0 if sock.recv(1) == b"\x01" else 1)  # 1 = method frame (Connection.Start)
except OSError:
    sys.exit(1)
PY
}

_bs_how_to_start_rabbitmq() {
    local origin="the default address; set RABBITMQ_URL to use another"
    [ -n "${RABBITMQ_URL:-}" ] && origin="from RABBITMQ_URL"
    cat >&2 <<EOF
error: RabbitMQ is not reachable at $1:$2 ($origin).
Start one, then re-run:
  Debian/Ubuntu:  sudo apt-get install -y rabbitmq-server && sudo systemctl start rabbitmq-server
                  (without systemd: sudo rabbitmq-server -detached)
  Docker:         docker run -d --name notify-rabbitmq -p 5672:5672 -p 15672:15672 rabbitmq:3.13-management
  Elsewhere:      export RABBITMQ_URL=amqp://USER:PASSWORD@HOST:5672/
EOF
    exit 1
}

_bs_ensure_rabbitmq() {
    local host port deadline
    read -r host port < <(_bs_rabbitmq_address)
    _bs_amqp_answers "$host" "$port" && return 0
    # Only a local broker on the default port is one we can start ourselves.
    case "$host:$port" in
        127.0.0.1:5672 | localhost:5672 | ::1:5672) ;;
        *) _bs_how_to_start_rabbitmq "$host" "$port" ;;
    esac
    _bs_is_debian_root || _bs_how_to_start_rabbitmq "$host" "$port"
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
        _bs_say "installing rabbitmq-server with apt-get"
        # A fresh image may have no package lists yet: update once and retry.
        if ! _bs_apt_install rabbitmq-server; then
            apt-get update -qq >/dev/null || true
            _bs_apt_install rabbitmq-server || _bs_how_to_start_rabbitmq "$host" "$port"
        fi
        # The package may have started it already.
        _bs_amqp_answers "$host" "$port" && return 0
    fi
    _bs_say "starting RabbitMQ (rabbitmq-server -detached)"
    rabbitmq-server -detached >/dev/null 2>&1 || true
    deadline=$((SECONDS + 60))
    while ((SECONDS < deadline)); do
        _bs_amqp_answers "$host" "$port" && {
            _bs_say "RabbitMQ is up on $host:$port"
            return 0
        }
        sleep 1
    done
    _bs_die "RabbitMQ did not open $host:$port within 60 s (see /var/log/rabbitmq/)"
}

_bs_ensure_venv
_bs_ensure_installed
_bs_ensure_rabbitmq

export VIRTUAL_ENV="$NOTIFY_ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
NOTIFY_PY="$VIRTUAL_ENV/bin/python"
export NOTIFY_PY
