#!/usr/bin/env bash
# `make run`: the whole stack on this machine, each service its own process, with a demo
# worker, demo traffic and the nginx ingress on :3000. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.venv/bin
STATE=var/run
mkdir -p "$STATE/logs" "$STATE/nginx"
: "${JOBDECK_API_PORT:=8000}" "${JOBDECK_GATEWAY_PORT:=8001}" "${JOBDECK_RECORDER_PORT:=8004}"
: "${JOBDECK_WORKER_PORT:=8010}" "${JOBDECK_INGRESS_PORT:=3000}" "${JOBDECK_DASHBOARD_PORT:=8005}"
: "${JOBDECK_SCHEDULER_PORT:=8003}"
export JOBDECK_API_PORT JOBDECK_GATEWAY_PORT JOBDECK_RECORDER_PORT JOBDECK_WORKER_PORT JOBDECK_DASHBOARD_PORT
# Exporter: files under var/exports, download URLs on the ingress's origin.
: "${JOBDECK_EXPORTER_PORT:=8002}" "${JOBDECK_STORAGE_URL:=file://$PWD/var/exports}"
: "${JOBDECK_EXPORTER_PUBLIC_URL:=http://localhost:$JOBDECK_INGRESS_PORT}"
export JOBDECK_EXPORTER_PORT JOBDECK_STORAGE_URL JOBDECK_EXPORTER_PUBLIC_URL
export JOBDECK_SCHEDULER_PORT
# A development box: the built-in JWT secret is allowed (services refuse it otherwise).
: "${JOBDECK_ENV:=development}"
export JOBDECK_ENV

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo "stopping jobdeck..." >&2
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit 0
}
trap cleanup INT TERM EXIT

start() {  # start NAME CMD...: run in the background, log to var/run/logs/NAME.log
  local name=$1; shift
  "$@" >>"$STATE/logs/$name.log" 2>&1 &
  pids+=($!)
  echo "  $name (pid $!) → $STATE/logs/$name.log"
}

if ! command -v nginx >/dev/null; then
  echo "installing nginx (Debian package) for the ingress" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi

API_UPSTREAM=127.0.0.1:$JOBDECK_API_PORT GATEWAY_UPSTREAM=127.0.0.1:$JOBDECK_GATEWAY_PORT \
  DASHBOARD_UPSTREAM=127.0.0.1:$JOBDECK_DASHBOARD_PORT EXPORTER_UPSTREAM=127.0.0.1:$JOBDECK_EXPORTER_PORT \
  envsubst '${API_UPSTREAM} ${GATEWAY_UPSTREAM} ${DASHBOARD_UPSTREAM} ${EXPORTER_UPSTREAM}' \
  <deploy/nginx/jobdeck.conf.template \
  | sed "s/listen 3000;/listen $JOBDECK_INGRESS_PORT;/" >"$STATE/nginx/jobdeck.conf"
cat >"$STATE/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $PWD/$STATE/nginx/nginx.pid;
error_log $PWD/$STATE/logs/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log $PWD/$STATE/logs/nginx-access.log;
  client_body_temp_path $PWD/$STATE/nginx;
  proxy_temp_path $PWD/$STATE/nginx;
  include $PWD/$STATE/nginx/jobdeck.conf;
}
CONF

echo "starting jobdeck:"
start recorder "$VENV/python" -m jobdeck_recorder
start api "$VENV/python" -m jobdeck_api
start gateway "$VENV/python" -m jobdeck_gateway
start dashboard "$VENV/python" -m jobdeck_dashboard
start exporter "$VENV/python" -m jobdeck_exporter
start worker "$VENV/python" -m jobdeck_worker --tasks jobdeck_worker.demo --queue price-file-parser:4 --queue emails:8 --queue reports:2
start demo-traffic "$VENV/python" -m jobdeck_worker.traffic
# The templates the seed's schedule examples name, then the scheduler.
"$VENV/python" -m jobdeck_scheduler.demo >>"$STATE/logs/scheduler.log" 2>&1
start scheduler "$VENV/python" -m jobdeck_scheduler
start ingress nginx -p "$PWD/$STATE/nginx" -c "$PWD/$STATE/nginx/nginx.conf" -g 'daemon off;'

TOKEN=$("$VENV/jobdeck" token --sub demo --role admin --ttl 86400)
cat <<INFO

jobdeck is running. Ingress: http://localhost:$JOBDECK_INGRESS_PORT
  Dashboard (signs the demo admin in): http://localhost:$JOBDECK_INGRESS_PORT/#token=$TOKEN
  API docs:   http://localhost:$JOBDECK_INGRESS_PORT/api/docs
  Search:     curl -H "Authorization: Bearer \$TOKEN" 'http://localhost:$JOBDECK_INGRESS_PORT/api/v1/jobs/search?status[]=completed&limit=5'
  Socket.IO:  io('http://localhost:$JOBDECK_INGRESS_PORT/jobs', { auth: { token } })
  Export:     curl -H "Authorization: Bearer \$TOKEN" -H 'Content-Type: application/json' -d '{"format":"excel","filters":{"status":["failed"]}}' http://localhost:$JOBDECK_INGRESS_PORT/api/v1/jobs/export
  Schedules:  curl -H "Authorization: Bearer \$TOKEN" 'http://localhost:$JOBDECK_INGRESS_PORT/api/v1/jobs/schedules'
  Admin token (24 h): $TOKEN
Ctrl-C stops everything.
INFO
wait -n "${pids[@]}" || true
echo "a jobdeck process exited; see $STATE/logs" >&2
