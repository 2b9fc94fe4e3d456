#!/usr/bin/env bash
# Install the Debian packages the tests and the demo start as real peers:
# socat (pty pairs), mbpoll (Modbus master), aravis-tools (GigE Vision simulator),
# openssh-server (deploy target), mosquitto (MQTT broker), chromium (renders the HTML eval report headless,
# offline), systemd (systemd-analyze checks the units offline; nothing is started), python3-seccomp (the daemon is run
# under the units' system-call filter), and the headers PyGObject needs to build.
# Runs apt-get only when root and something is missing; otherwise says what to install.
set -euo pipefail
PKGS=(socat mbpoll aravis-tools aravis-tools-cli gir1.2-aravis-0.8 libgirepository1.0-dev
      libcairo2-dev pkg-config gcc openssh-server openssh-client sqlite3 mosquitto chromium systemd python3-seccomp)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: not a Debian system; install the equivalents of: ${missing[*]}" >&2
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "system-deps: missing Debian packages: ${missing[*]}" >&2
  echo "system-deps: run 'sudo apt-get install ${missing[*]}' (tests that need them will skip)" >&2
  exit 0
fi
echo "system-deps: apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
