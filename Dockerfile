# ddbridge as a container image (used by docker-compose.yml's bridge and backfill services).
FROM python:3.11.14-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ddbridge ddbridge
COPY bridge bridge
COPY stream stream
COPY backfill backfill
COPY reconcile reconcile
COPY connectors connectors
COPY ops ops
COPY examples examples
RUN pip install --no-cache-dir .
ENV DDBRIDGE_CONFIG=/app/examples/payments/ddbridge.toml
ENTRYPOINT ["ddbridge"]
CMD ["stream"]
