# A local stand-in for llama.cpp's server image, for machines without a registry: the
# llama-cpp-python build `make install` compiled (from the wheelhouse, never compiled again) with
# its OpenAI-compatible server, `python -m llama_cpp.server`. CPU only.
ARG BASE_IMAGE=folio-base:bookworm

FROM ${BASE_IMAGE} AS builder
COPY build/wheelhouse /wheels
RUN python3 -m venv /opt/llm \
    && /opt/llm/bin/pip install --quiet --no-index --no-cache-dir --find-links /wheels \
       'llama-cpp-python[server]'

FROM ${BASE_IMAGE}
RUN useradd --create-home --uid 10003 --shell /usr/sbin/nologin llm && mkdir -p /models
COPY --from=builder /opt/llm /opt/llm
ENV PATH=/opt/llm/bin:$PATH
USER llm
EXPOSE 8080
# A TCP probe: the port opens once the model is loaded, and every HTTP route of llama_cpp.server
# (even /v1/models) takes the model's lock, so an HTTP probe would queue behind a generation.
HEALTHCHECK --interval=10s --timeout=5s --retries=12 \
    CMD ["python", "-c", "import socket; socket.create_connection(('127.0.0.1', 8080), 4)"]
ENTRYPOINT ["/usr/bin/tini", "--", "python", "-m", "llama_cpp.server"]
# Requests queue instead of interrupting the one generating (the server's default interrupts it).
CMD ["--interrupt_requests", "false"]
