#!/usr/bin/env bash
# Refreshes the GraphiQL files that SegmentQL serves itself (server/graphiql/static/) from npm: the pinned
# versions below, each with its license. Run it after changing a version, then commit the files.
set -euo pipefail
cd "$(dirname "$0")/static"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# vendor PACKAGE@VERSION LICENSE-NAME (FILE-IN-PACKAGE SERVED-NAME)...
vendor() {
  local spec="$1" license="$2"
  shift 2
  local tarball
  tarball="$(cd "$work" && npm pack --silent "$spec")"
  rm -rf "$work/package" && tar -xzf "$work/$tarball" -C "$work"
  if [ -f "$work/package/LICENSE" ]; then
    cp "$work/package/LICENSE" "$license"
  else  # @graphiql/plugin-explorer ships none: its package.json says MIT, as the graphql/graphiql repository it comes from
    { echo "$spec ships no LICENSE file; its package.json declares \"license\": \"$(node -p "require('$work/package/package.json').license")\"."
      echo "It is developed in https://github.com/graphql/graphiql, whose license (LICENSE.graphiql) is the same."; } > "$license"
  fi
  while [ "$#" -gt 0 ]; do
    cp "$work/package/$1" "$2"
    shift 2
  done
}

vendor react@18.2.0 LICENSE.react umd/react.production.min.js react.production.min.js
vendor react-dom@18.2.0 LICENSE.react-dom umd/react-dom.production.min.js react-dom.production.min.js
vendor graphiql@3.8.3 LICENSE.graphiql graphiql.min.js graphiql.min.js graphiql.min.css graphiql.min.css
vendor @graphiql/plugin-explorer@1.0.2 LICENSE.plugin-explorer dist/index.umd.js plugin-explorer.umd.js \
  dist/style.css plugin-explorer.css
ls -l
