#!/usr/bin/env bash
# `make bench`: every benchmark in turn, each printing one summary line. Not part of CI.
# Run one alone with: .venv/bin/python bench/<name>.py
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
if [ -f bench/node/package.json ]; then  # the BullMQ baseline of bench/worker.py
  (cd bench/node && npm ci --silent --no-audit --no-fund) || status=1
fi
for name in worker latency recorder search gateway_stats enqueue gateway dashboard scheduler export; do
  if [ -f "bench/$name.py" ]; then
    echo "== bench/$name.py"
    .venv/bin/python "bench/$name.py" || status=1
  fi
done
exit $status
