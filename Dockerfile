# wyoming-bodhi: one Dockerfile for the standalone image and the Home Assistant add-on.
#
#   docker build -t wyoming-bodhi .
#   docker run --rm -p 10300:10300 wyoming-bodhi --demo
#   docker run --rm -p 10300:10300 -e BODHI_API_KEY_FILE=/run/secrets/bodhi_api_key \
#       -e BODHI_CUSTOMER_ID_FILE=/run/secrets/bodhi_customer_id ... wyoming-bodhi
#
# The Supervisor builds the add-on from this file alone (there is no build.yaml): `docker
# buildx build --platform linux/<arch> --build-arg BUILD_ARCH=<amd64|aarch64> --build-arg
# BUILD_VERSION=<version> .`. BUILD_ARCH, which every Supervisor passes and `docker build`
# does not, makes the add-on's variant: root, since the Supervisor's /data belongs to root,
# and BODHI_ADDON=true, on which the entrypoint runs docker/run-addon.sh (options from
# /data/options.json, discovery, the status page on the ingress port). A build argument
# rather than a CMD, because an add-on cannot override its image's command.
#
# Both variants start from Python's Debian image (multi-arch: the Supervisor's --platform
# picks the architecture). Its argument is BODHI_BASE, not the Supervisor's BUILD_FROM:
# Supervisors before 2026.04 pass BUILD_FROM even without build.yaml, set to Home Assistant's
# Alpine base, which has neither Python nor apt; from 2026.04 on they pass none.
ARG BODHI_BASE=python:3.12-slim-bookworm

# -- requirements: the dependencies pyproject.toml declares, one per line ----------------------
FROM ${BODHI_BASE} AS requirements
COPY pyproject.toml /tmp/pyproject.toml
RUN python3 -c 'import sys, tomllib; print(*tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"], sep="\n")' \
        /tmp/pyproject.toml > /tmp/requirements.txt

# -- dependencies: a virtual environment with them, and nothing of ours -----------------------
# Copied from a stage of its own, the list is what keys this stage's layers: a change to our
# code, or to anything else in pyproject.toml, leaves them as they are for the next build.
FROM ${BODHI_BASE} AS dependencies
# Every dependency has wheels for amd64 and aarch64, so no compiler is needed.
RUN python3 -m venv /opt/venv
COPY --from=requirements /tmp/requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        --requirement /tmp/requirements.txt

# -- builder: the package, into that environment ----------------------------------------------
FROM dependencies AS builder
WORKDIR /src
COPY pyproject.toml README.md ./
COPY wyoming_bodhi ./wyoming_bodhi
# Optional extras, e.g. --build-arg BODHI_EXTRAS=zeroconf for --zeroconf on a host network.
ARG BODHI_EXTRAS=""
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        ".${BODHI_EXTRAS:+[$BODHI_EXTRAS]}"

# -- the image: the base, a Python runtime and the venv; no compilers, no sources, no caches ----
FROM ${BODHI_BASE}

COPY --from=builder /opt/venv /opt/venv
COPY docker/entrypoint.sh /usr/local/bin/entrypoint.sh
COPY docker/run-addon.sh /usr/local/bin/run-addon.sh
RUN chmod 0755 /usr/local/bin/entrypoint.sh /usr/local/bin/run-addon.sh \
    && groupadd --gid 1000 bodhi \
    && useradd --uid 1000 --gid bodhi --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin bodhi

# The standalone image runs as that user, the add-on (built with BUILD_ARCH) as root; both by
# number, so that a runtime can tell root from not without the image's /etc/passwd
# (Kubernetes' runAsNonRoot), which hadolint cannot see through the substitution.
ARG BUILD_ARCH=""
ARG BODHI_ADDON=${BUILD_ARCH:+true}
ARG BODHI_USER=${BUILD_ARCH:+0:0}
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BODHI_ADDON=${BODHI_ADDON:-false}

# hadolint ignore=DL3066
USER ${BODHI_USER:-1000:1000}
EXPOSE 10300/tcp

# `docker stop` sends SIGTERM: wyoming-bodhi (PID 1 in the standalone image) stops cleanly on
# it, and the add-on's run-addon.sh forwards it to the server.

# Sends Describe and expects the bodhi program in the answer. No --uri: the check asks the
# address configured in the environment (WYOMING_URI, or the BODHI_CONFIG file), by default
# tcp://0.0.0.0:10300, which it asks on 127.0.0.1. The add-on serves on that default port.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["wyoming-bodhi", "--health-check"]

ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]

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
