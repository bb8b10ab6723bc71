#!/usr/bin/env bash
# Makes Debian's PyTorch (apt python3-torch, torch 1.13 for Python 3.11) available to the tests that
# run PyTorch directly (test/unit/torch-forecast.test.ts). As root it installs the package when it is
# missing (one installer at a time: apt's lock); otherwise it says why it cannot. Prints OK or the reason.
set -uo pipefail
if /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then echo OK; exit 0; fi
if ! command -v apt-get >/dev/null; then echo "no apt-get here to install python3-torch"; exit 0; fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else echo "python3-torch is not installed and this user cannot install it (apt-get install python3-torch as root)"; exit 0; fi
fi
LOCK="${TMPDIR:-/tmp}/gatelab-apt.lock"
exec 9>"$LOCK"
flock 9
if /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then echo OK; exit 0; fi
echo "[ensure-torch] apt-get install python3-torch" >&2
$SUDO apt-get update -qq >&2 && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch >&2 || { echo "apt-get install python3-torch failed"; exit 0; }
/usr/bin/python3 -c 'import torch' >/dev/null 2>&1 && echo OK || echo "python3-torch installed but torch does not import"
