#!/usr/bin/env bash
# Generates the Prisma client (run by `pnpm install`). The Prisma CLI wants a native schema
# engine it downloads from Prisma's servers; where that host is unreachable and the workplace
# provides the offline stand-in (../shared/tools/prisma-engine), use it. Elsewhere the CLI
# behaves as usual.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
shim="../shared/tools/prisma-engine"
if [ -z "${PRISMA_SCHEMA_ENGINE_BINARY:-}" ] && [ -d "$shim" ]; then
  PRISMA_SCHEMA_ENGINE_BINARY="$(bash "$shim/install.sh" "$PWD/node_modules/.cache/prisma-engine" 2>/dev/null | tail -n 1)"
  export PRISMA_SCHEMA_ENGINE_BINARY
fi
exec "$PWD/node_modules/.bin/prisma" generate
