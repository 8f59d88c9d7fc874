# wyoming-bodhi: one Dockerfile for the standalone image and the Home Assistant add-on.
#
#   docker build -t wyoming-bodhi .
#   docker run --rm -p 10300:10300 wyoming-bodhi --demo
#   docker run --rm -p 10300:10300 -e BODHI_API_KEY_FILE=/run/secrets/bodhi_api_key \
#       -e BODHI_CUSTOMER_ID_FILE=/run/secrets/bodhi_customer_id ... wyoming-bodhi
#
# The add-on build (build.yaml) changes three things through build arguments: the base image
# (BUILD_FROM: Home Assistant's Debian base, which has no Python, so Debian's python3 is
# installed), the user (BODHI_USER=root: the Supervisor's /data belongs to root) and the start
# (BODHI_ADDON=true: the entrypoint then runs docker/run-addon.sh, which reads
# /data/options.json and announces the server to Home Assistant). Build arguments rather than
# a CMD override, because an add-on cannot override its image's command.
ARG BUILD_FROM=python:3.12-slim-bookworm

# -- builder: a virtual environment with the package and its dependencies ----------------------
FROM ${BUILD_FROM} AS builder

# Every dependency has wheels for amd64 and aarch64, so no compiler is needed here either.
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv

WORKDIR /src
COPY pyproject.toml README.md ./
COPY wyoming_bodhi ./wyoming_bodhi
# Optional extras, e.g. --build-arg BODHI_EXTRAS=zeroconf for --zeroconf on a host network.
ARG BODHI_EXTRAS=""
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        ".${BODHI_EXTRAS:+[$BODHI_EXTRAS]}"

# -- the image: the base, a Python runtime and the venv; no compilers, no sources, no caches ----
FROM ${BUILD_FROM}

# Pinning Debian package versions would break on every security update of the base; the base
# image tag pins the release.
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null 2>&1; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi

# The standalone image runs as an unprivileged user; the add-on build sets root.
ARG BODHI_USER=bodhi
ARG BODHI_UID=1000
RUN if [ "${BODHI_USER}" != root ]; then \
        useradd --uid "${BODHI_UID}" --user-group --no-create-home \
            --home-dir /nonexistent --shell /usr/sbin/nologin "${BODHI_USER}"; \
    fi

COPY --from=builder /opt/venv /opt/venv
COPY docker/entrypoint.sh /usr/local/bin/entrypoint.sh
COPY docker/run-addon.sh /usr/local/bin/run-addon.sh
RUN chmod 0755 /usr/local/bin/entrypoint.sh /usr/local/bin/run-addon.sh

ARG BODHI_ADDON=false
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BODHI_ADDON=${BODHI_ADDON}

USER ${BODHI_USER}
EXPOSE 10300/tcp

# `docker stop` sends SIGTERM: wyoming-bodhi (PID 1 in the standalone image) stops cleanly on
# it, and the add-on's run-addon.sh forwards it to the server.

# Sends Describe and expects the bodhi program in the answer. No --uri: the check asks the
# address configured in the environment (WYOMING_URI, or the BODHI_CONFIG file), by default
# tcp://0.0.0.0:10300, which it asks on 127.0.0.1. The add-on serves on that default port.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["wyoming-bodhi", "--health-check"]

ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]

ARG BUILD_ARCH=""
ARG BUILD_VERSION=0.1.0
LABEL \
    io.hass.name="Bodhi" \
    io.hass.description="Speech-to-text for Indian languages with Bodhi, Navana's real-time cloud ASR" \
    io.hass.type="addon" \
    io.hass.version="${BUILD_VERSION}" \
    io.hass.arch="${BUILD_ARCH}" \
    org.opencontainers.image.title="wyoming-bodhi" \
    org.opencontainers.image.description="Wyoming protocol speech-to-text server for Bodhi (Navana) real-time ASR in Indian languages" \
    org.opencontainers.image.version="${BUILD_VERSION}" \
    org.opencontainers.image.licenses="MIT" \
    org.opencontainers.image.vendor="wyoming-bodhi developers"
