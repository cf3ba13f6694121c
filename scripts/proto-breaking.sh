#!/usr/bin/env bash
# Fails when the protos break wire or source compatibility (buf's FILE rules) against a baseline:
# the main branch from any other branch, or the parent commit on main itself (main is where
# work lands here, so each commit is checked against the one before it).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
branch=$(git rev-parse --abbrev-ref HEAD)
if [ "$branch" != main ] && git rev-parse --verify -q main >/dev/null; then
  against='.git#branch=main'
elif git rev-parse --verify -q HEAD~1 >/dev/null && git cat-file -e HEAD~1:buf.yaml 2>/dev/null; then
  against='.git#ref=HEAD~1'
else
  echo "proto:breaking: no earlier protos to compare with; skipped"
  exit 0
fi
echo "proto:breaking: against $against"
npx buf breaking --against "$against"
