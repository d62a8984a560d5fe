#!/usr/bin/env bash
# Vendor uPlot (https://github.com/leeoniya/uPlot, MIT) into static/vendor/uplot/ from the npm
# registry, so the pages load it from our own static files and never from a CDN.
#
# To refresh: change UPLOT_VERSION below, run `scripts/vendor-uplot.sh`, check the charts (open
# static/charts-demo.html), and update the version in static/vendor/uplot/README.md.
set -euo pipefail

UPLOT_VERSION="1.6.32"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$here/../static/vendor/uplot"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
tarball="$(npm pack --silent "uplot@$UPLOT_VERSION" | tail -n 1)"
tar -xzf "$tarball"  # unpacks into ./package/

mkdir -p "$dest"
cp package/dist/uPlot.iife.min.js package/dist/uPlot.min.css package/LICENSE "$dest/"

echo "uPlot $UPLOT_VERSION vendored into $(cd "$dest" && pwd)"
