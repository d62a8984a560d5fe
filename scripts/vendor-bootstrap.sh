#!/usr/bin/env bash
# Vendor Bootstrap (https://getbootstrap.com, MIT) into static/vendor/bootstrap/ from the npm registry,
# so the pages load it from our own static files and never from a CDN.
#
# To refresh: change BOOTSTRAP_VERSION below, run `scripts/vendor-bootstrap.sh`, look at the pages in
# light and dark mode, and update the version in static/vendor/bootstrap/README.md.
set -euo pipefail

BOOTSTRAP_VERSION="5.3.9"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$here/../static/vendor/bootstrap"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
tarball="$(npm pack --silent "bootstrap@$BOOTSTRAP_VERSION" | tail -n 1)"
tar -xzf "$tarball"  # unpacks into ./package/

mkdir -p "$dest"
cp package/dist/css/bootstrap.min.css package/dist/js/bootstrap.bundle.min.js package/LICENSE "$dest/"
# The source maps are not vendored, so their references go: collectstatic's manifest storage
# rewrites every sourceMappingURL it finds and fails on a missing map.
sed -i '/^\/[*/]# sourceMappingURL=/d' "$dest/bootstrap.min.css" "$dest/bootstrap.bundle.min.js"

echo "Bootstrap $BOOTSTRAP_VERSION vendored into $(cd "$dest" && pwd)"
