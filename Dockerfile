# gx-gateway container image: docker build -t gx-gateway . (see README, "Container")
# Build stage: install the checkout with the same script the test suite runs on a fresh
# clone (packaging/install.sh: a fresh venv, a non-editable `pip install .`, `gx-gateway check`).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY registers/ registers/
COPY gateway/ gateway/
COPY mappings/ mappings/
COPY packaging/install.sh packaging/install.sh
RUN sh packaging/install.sh /opt/gx-gateway .

# Run stage: the same base, the venv and the example config; nothing fetched at run time.
FROM python:3.11-slim-bookworm
COPY --from=build /opt/gx-gateway /opt/gx-gateway
COPY packaging/gateway.toml /etc/gx-gateway/gateway.toml
RUN useradd --system --uid 10502 --no-create-home --home-dir /var/lib/gx-gateway gx-gateway \
    && mkdir -p /var/lib/gx-gateway \
    && chown 10502:10502 /var/lib/gx-gateway
ENV PATH=/opt/gx-gateway/bin:$PATH \
    PYTHONUNBUFFERED=1
USER 10502:10502
VOLUME ["/etc/gx-gateway", "/var/lib/gx-gateway"]
# Modbus-TCP, Modbus/TCP Security (TLS), HTTP (JSON API, /healthz, /metrics)
EXPOSE 502 802 8088
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["gx-gateway", "status", "--health", "--url", "http://127.0.0.1:8088"]
CMD ["gx-gateway", "run", "--config", "/etc/gx-gateway/gateway.toml"]
