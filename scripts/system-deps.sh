#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when they are missing.
# Each entry is "command-to-look-for:debian-package". Runs as root here; uses sudo elsewhere.
set -euo pipefail
needed=(
  "pg_isready:postgresql-client"
  "sshd:openssh-server"
  "ssh-keygen:openssh-client"
)
missing=()
for item in "${needed[@]}"; do
  cmd=${item%%:*}; pkg=${item##*:}
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
