#!/bin/sh
# The image's entrypoint.
# - Standalone image (the default): every argument goes to wyoming-bodhi, so
#   `docker run IMAGE --demo` and `docker run -e BODHI_API_KEY_FILE=... IMAGE` just work.
# - Add-on image (the Dockerfile's addon stage, which sets BODHI_ADDON=true): started with no
#   arguments, as the Supervisor does, it runs the add-on start script (options, discovery).
#   Arguments still go straight to wyoming-bodhi, e.g. for `docker run IMAGE --help`.
if [ "${BODHI_ADDON:-false}" = true ] && [ "$#" -eq 0 ]; then
    exec run-addon.sh
fi
exec wyoming-bodhi "$@"
