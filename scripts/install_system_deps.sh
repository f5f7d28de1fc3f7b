#!/usr/bin/env bash
# Debian packages the project needs: the libraries for headless MuJoCo rendering through
# EGL (MUJOCO_GL=egl), and Chromium, in which tests/test_docs.py opens the built
# documentation site headless (`make docs`).
# Only installs what is missing; needs root (or passwordless sudo) when something is.
set -euo pipefail
pkgs=(libegl1 libgl1 libgles2 chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "Installing Debian packages for headless rendering and the docs test: ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
