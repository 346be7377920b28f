#!/bin/sh
# Install the Debian packages the backup server needs, when missing.
#   scripts/system-packages.sh run    qemu-utils (the simulator's disks, exports)
#   scripts/system-packages.sh test   the above, and chromium for the browser tests
set -eu
need="qemu-utils libcurl4-openssl-dev libssl-dev"
[ "${1:-run}" = test ] && need="$need chromium"
missing=""
for pkg in $need; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "Missing Debian packages:$missing" >&2
    echo "Install them as root: apt-get install -y$missing" >&2
    exit 1
fi
echo "Installing Debian packages:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
