#!/usr/bin/env bash
# Refreshes the third-party files of Herald's web pages from the npm registry: for each package
# below, `npm pack` its exact version into a temporary directory and copy the named build files,
# unmodified, with the package's LICENSE, into server/web/vendor/<package>@<version>/.
# The pages load exactly these files (server/web/playground/index.html); to move to a new
# version, change it here, run this script, update the paths in the pages and
# server/web/vendor/README.md, and run the browser tests.
#
# Usage: server/web/vendor/refresh.sh    (needs npm and network access to the npm registry)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# package@version, then the files taken from its tarball (paths inside the package).
vendor() {
    local spec="$1"
    shift
    local dest="$here/$spec"
    (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
    local tarball
    tarball="$(ls "$tmp"/*.tgz)"
    mkdir -p "$tmp/unpacked"
    tar -xzf "$tarball" -C "$tmp/unpacked"
    rm -rf "$dest"
    mkdir -p "$dest"
    # The licence under the name the package gives it (LICENSE, LICENSE.md).
    cp "$tmp"/unpacked/package/LICENSE* "$dest/"
    for f in "$@"; do
        mkdir -p "$dest/$(dirname "$f")"
        cp "$tmp/unpacked/package/$f" "$dest/$f"
    done
    rm -rf "$tmp/unpacked" "$tarball"
    echo "vendored $spec: $*"
}

vendor react@18.3.1 umd/react.production.min.js
vendor react-dom@18.3.1 umd/react-dom.production.min.js
vendor graphql-ws@5.16.2 umd/graphql-ws.min.js
vendor graphiql@4.1.2 graphiql.min.js graphiql.min.css
