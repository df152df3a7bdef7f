# A local stand-in for the official chromadb/chroma image, for machines without a registry:
# the chromadb version Folio installs (the one in the wheelhouse), served by `chroma run`.
ARG BASE_IMAGE=folio-base:bookworm

FROM ${BASE_IMAGE} AS builder
COPY build/wheelhouse /wheels
RUN python3 -m venv /opt/chroma \
    && /opt/chroma/bin/pip install --quiet --no-index --no-cache-dir --find-links /wheels chromadb

FROM ${BASE_IMAGE}
RUN useradd --create-home --uid 10002 --shell /usr/sbin/nologin chroma \
    && mkdir -p /data && chown chroma:chroma /data
COPY --from=builder /opt/chroma /opt/chroma
ENV PATH=/opt/chroma/bin:$PATH ANONYMIZED_TELEMETRY=False
USER chroma
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --retries=12 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v2/heartbeat', timeout=4)"]
ENTRYPOINT ["/usr/bin/tini", "--", "chroma"]
CMD ["run", "--host", "0.0.0.0", "--port", "8000", "--path", "/data"]
