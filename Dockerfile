# One Dockerfile for every Python service; SERVICE picks the dependency group from pyproject.toml
# (producer, consumer, api, bootstrap, fake-binance, replay), so each image carries only what it runs.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
# Pinned dependencies first (their own layer, reused until the lock changes), then the code.
COPY requirements/${SERVICE}.lock ./requirements.lock
RUN /opt/venv/bin/pip install --no-deps -r requirements.lock
COPY pyproject.toml ./
COPY schemas ./schemas
COPY producer ./producer
COPY consumer ./consumer
COPY api ./api
COPY bootstrap ./bootstrap
COPY maintenance ./maintenance
COPY fake_binance ./fake_binance
COPY replay ./replay
# The services never install anything: pip and setuptools (about 23 MB) stay behind.
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/python -m pip uninstall -y -q pip setuptools

FROM ${PYTHON_IMAGE}
# The history import's state directory, owned by the service user so that a volume there is writable.
RUN useradd --system --uid 10001 --no-create-home app \
    && mkdir -p /var/lib/binance-history && chown 10001 /var/lib/binance-history
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
WORKDIR /app
USER 10001
