#!/usr/bin/env bash
# Fails when the committed generated code differs from what `buf generate` makes of the protos.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
npx buf generate
if [ -n "$(git status --porcelain -- libs/contracts/src/gen)" ]; then
  echo "Generated code is out of date: run 'npm run proto:generate' and commit libs/contracts/src/gen." >&2
  git status --short -- libs/contracts/src/gen >&2
  git --no-pager diff --stat -- libs/contracts/src/gen >&2
  exit 1
fi
echo "proto:drift: generated code matches the protos"
