#!/bin/sh
# Home Assistant add-on start: serve Wyoming with the add-on's options, and once the server
# answers, announce it to Home Assistant through Supervisor discovery. The add-on image's
# entrypoint runs this (see docker/entrypoint.sh); it is PID 1 there, so it forwards
# SIGTERM/SIGINT to the server and exits with the server's status.
#
# Environment (the add-on uses the defaults; tests point them at temp files and loopback):
#   ADDON_OPTIONS          the options file the Supervisor writes   (/data/options.json)
#   ADDON_HOST             the address to listen on                 (0.0.0.0)
#   ADDON_PORT             the port to listen on and announce        (10300)
#   ADDON_DISCOVERY_HOST   the host name Home Assistant reaches us by (this container's)
#   ADDON_STARTUP_TIMEOUT  seconds to wait for the server to answer before not announcing (60)
#   ADDON_INGRESS_PORT     the status page's port: the Supervisor's default ingress_port,
#                          which config.yaml keeps                                   (8099)
#   ADDON_INGRESS_FROM     the only address allowed to reach it: the Supervisor's
#                          ingress proxy                                            (172.30.32.2)
#   SUPERVISOR_URL, SUPERVISOR_TOKEN  for python3 -m wyoming_bodhi.homeassistant.supervisor
set -u

options=${ADDON_OPTIONS:-/data/options.json}
host=${ADDON_HOST:-0.0.0.0}
port=${ADDON_PORT:-10300}
startup_timeout=${ADDON_STARTUP_TIMEOUT:-60}
uri="tcp://$host:$port"
ingress_port=${ADDON_INGRESS_PORT:-8099}
ingress_from=${ADDON_INGRESS_FROM:-172.30.32.2}

log() {
    echo "run-addon: $*" >&2
}

server=
# shellcheck disable=SC2329 # invoked by the traps below
stop() {
    log "received SIG$1: stopping wyoming-bodhi"
    # Always TERM, which the server handles with a clean stop: a shell starts background
    # commands with SIGINT ignored, so the server would not see a forwarded SIGINT.
    if [ -n "$server" ]; then
        kill -TERM "$server" 2>/dev/null
    fi
}
trap 'stop TERM' TERM
trap 'stop INT' INT

# The announcer runs beside the server so that signals reach this script at once. Each of
# its commands runs in the background and is waited for, so that a TERM stops it promptly.
announce() {
    child=
    trap 'if [ -n "$child" ]; then kill "$child" 2>/dev/null; fi; exit 143' TERM
    deadline=$(($(date +%s) + startup_timeout))
    while :; do
        # --health-check asks a wildcard address on loopback.
        wyoming-bodhi --health-check --uri "$uri" >/dev/null 2>&1 &
        child=$!
        if wait "$child"; then
            break
        fi
        if ! kill -0 "$server" 2>/dev/null; then
            return 0 # the server has gone; the main script reports why
        fi
        if [ "$(date +%s)" -ge "$deadline" ]; then
            log "the server did not answer on port $port within ${startup_timeout} s: not announcing it"
            return 1
        fi
        sleep 0.5 &
        child=$!
        wait "$child"
    done
    discovery_host=${ADDON_DISCOVERY_HOST:-$(uname -n)}
    python3 -m wyoming_bodhi.homeassistant.supervisor --announce "tcp://$discovery_host:$port" &
    child=$!
    if ! wait "$child"; then
        log "discovery failed; still serving: add the Wyoming integration by hand (host $discovery_host, port $port)"
        return 1
    fi
}

# No drain delay: Home Assistant connects to the add-on itself, with no load balancer in
# between that would have to notice the stop, and nowhere else to send a request meanwhile.
# The status page answers the ingress proxy only, which forwards whatever name the browser
# knows Home Assistant by (Home Assistant's login has checked the person): any host name.
wyoming-bodhi --config "$options" --uri "$uri" --drain-delay 0 \
    --http-uri "tcp://$host:$ingress_port" --http-allow "$ingress_from" --http-host '*' &
server=$!
log "started wyoming-bodhi (pid $server) on $uri with $options"
announce &
announcer=$!

# A trapped signal interrupts wait (status > 128): wait again until the server has gone.
wait "$server"
status=$?
while kill -0 "$server" 2>/dev/null; do
    wait "$server"
    status=$?
done
kill -TERM "$announcer" 2>/dev/null
wait "$announcer"
log "wyoming-bodhi exited with status $status"
exit "$status"
