#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when they are missing.
# Each entry is "command-to-look-for:debian-package" ("-" as the command: check the package
# itself, for libraries). Runs as root here; uses sudo elsewhere.
set -euo pipefail
needed=(
  "pg_isready:postgresql-client"
  "sshd:openssh-server"
  "ssh-keygen:openssh-client"
  "-:libharfbuzz-subset0"
  "-:libpango-1.0-0"
  "-:fonts-dejavu-core"
  "chromium:chromium"
  "java:openjdk-17-jre-headless"
)
missing=()
for item in "${needed[@]}"; do
  cmd=${item%%:*}; pkg=${item##*:}
  if [ "$cmd" = "-" ]; then
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  else
    command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
