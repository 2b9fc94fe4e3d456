#!/usr/bin/env bash
# Before a venv is made from a lock: is PYTHON the interpreter the lock was written for, and can pip find the CPU
# build of torch? Says what to do instead of letting pip fail deep inside an install.
# Usage: preflight.sh PYTHON LOCK_PYTHON TORCH_WHEELS
set -euo pipefail
py=$1 want=$2 wheels=$3
if ! command -v "$py" >/dev/null 2>&1; then
  echo "preflight: no '$py' on PATH; the build-host lock is for Python $want (make PYTHON=python$want)" >&2
  exit 2
fi
have=$("$py" -c 'import sys, platform; print("%d.%d %s" % (sys.version_info[:2] + (platform.machine(),)))')
if [ "$have" != "$want x86_64" ]; then
  echo "preflight: '$py' is Python ${have% *} on ${have#* }; requirements/build-host.lock is for Python $want" \
       "on x86_64" >&2
  echo "  what to do: make PYTHON=python$want (or another Python $want on x86_64)" >&2
  exit 2
fi
case "$wheels" in
  *://*) ;;  # an index or a page of links: pip asks it
  *) if ! ls "$wheels"/torch-*+cpu-*.whl >/dev/null 2>&1; then
       echo "preflight: no CPU torch wheel in TORCH_WHEELS=$wheels; the lock pins torch==...+cpu" >&2
       echo "  what to do: make TORCH_WHEELS=https://download.pytorch.org/whl/cpu (or a folder holding the wheel)" >&2
       exit 2
     fi ;;
esac
