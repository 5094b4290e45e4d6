# ddbridge as a container image (docker-compose.yml's bridge and backfill, deploy/kubernetes/):
#   docker build -t ddbridge:0.1.0 .        (the tag is the project's version)
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
RUN pip install --no-cache-dir . \
    && useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin ddbridge \
    && mkdir /work && chown 10001:10001 /work
# Not root; the Kubernetes manifests run it as this uid with a read-only root filesystem. Errors files
# and reports go to the working directory /work (a volume there keeps them).
USER 10001
WORKDIR /work
ENV DDBRIDGE_CONFIG=/app/examples/payments/ddbridge.toml
ENTRYPOINT ["ddbridge"]
CMD ["stream"]
