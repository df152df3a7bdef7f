"""The page's panels: collections, documents, uploads, answer settings, status and sources."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import streamlit as st

from app.previews import available_models, page_text
from app.render import cited_passages, highlighted, where
from folio.service import UPLOAD_TYPES, FolioService, ServiceError, Upload
from ingest.pipeline import IngestProgress
from prompts import available_prompts
from retrieval.chain import Answer

DOCS_LISTED = 30


def collections(service: FolioService) -> None:
    state = st.session_state
    names = service.collection_names()
    if state.collection not in names:
        names.append(state.collection)
    chosen = st.selectbox("Collection", names, index=names.index(state.collection))
    if chosen != state.collection:  # a conversation belongs to one collection
        state.collection, state.messages = chosen, []
    with st.popover("New collection", icon=":material/add:"):
        name = st.text_input("Name", key="new-collection", placeholder="lowercase-name")
        if st.button("Create", key="create-collection") and name:
            try:
                service.create_collection(name.strip())
                state.collection = name.strip()
                state.messages = []
                st.rerun()
            except ServiceError as exc:
                st.error(exc.message)


def documents(service: FolioService) -> None:
    docs = service.sources(st.session_state.collection)["documents"]
    st.subheader(f"Documents ({len(docs)})")
    if not docs:
        st.caption("No documents yet: upload some below, or run `folio ingest PATH`.")
    shown = docs
    if len(docs) > DOCS_LISTED:  # a long list would bury the upload box: filter instead
        needle = st.text_input("Filter documents", key="doc-filter", placeholder="file name")
        shown = [d for d in docs if needle.lower() in Path(d["path"]).name.lower()]
        if len(shown) > DOCS_LISTED:
            st.caption(f"Showing {DOCS_LISTED} of {len(shown)}; type to narrow the list.")
            shown = shown[:DOCS_LISTED]
    for doc in shown:
        name, remove = st.columns([5, 1])
        path = Path(doc["path"])
        pages = f"{doc['pages']} pages · " if doc["pages"] else ""
        name.markdown(f"**{_escape_md(path.name)}**")
        name.caption(f"{pages}{doc['chunks']} chunks · {doc['ingested_at'][:16].replace('T', ' ')}")
        label = f"Remove {path.name}"
        if remove.button("", icon=":material/delete:", key=f"rm-{doc['path']}", help=label):
            removed = service.remove(st.session_state.collection, [doc["path"]])
            st.toast(f"Removed {path.name} ({removed['chunks_removed']} chunks)")
            _doctor.clear()
            st.rerun()


def _escape_md(text: str) -> str:
    return "".join(f"\\{c}" if c in "\\`*_{}[]()#+-.!|<>" else c for c in text)


class _UploadProgress(IngestProgress):
    def __init__(self, bar: Any) -> None:
        self.bar, self.total, self.done = bar, 1, 0
        self.queued, self.embedded = 0, 0

    def start_files(self, total: int) -> None:
        self.total = max(total, 1)
        self._draw("Reading files…")

    def file_done(self, path: str) -> None:
        self.done += 1
        self._draw(f"Indexed {Path(path).name}")

    def chunks_queued(self, count: int) -> None:
        self.queued += count

    def chunks_embedded(self, count: int) -> None:
        self.embedded += count
        self._draw(f"Embedding {self.embedded}/{self.queued} chunks")

    def _draw(self, text: str) -> None:
        share = self.done / self.total
        if self.queued:  # half for reading files, half for embedding their chunks
            share = (share + self.embedded / self.queued) / 2
        self.bar.progress(min(share, 1.0), text=text)


def uploads(service: FolioService) -> None:
    state = st.session_state
    state.setdefault("uploader", 0)
    limit = service.settings.max_file_mb
    files = st.file_uploader(
        f"Add documents (PDF, Markdown, text, HTML, DOCX; up to {limit:g} MB each)",
        type=list(UPLOAD_TYPES),
        accept_multiple_files=True,
        key=f"uploader-{state.uploader}",
    )
    if files:
        bar = st.progress(0.0, text="Uploading…")
        result = service.upload(
            state.collection,
            [Upload(f.name, f.getvalue()) for f in files],
            progress=_UploadProgress(bar),
        )
        bar.empty()
        report = result.report
        state.upload_summary = (
            f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged "
            f"({report.chunks_added} chunks)"
        )
        state.upload_errors = result.errors
        _doctor.clear()
        state.uploader += 1  # a fresh uploader: the same files are not ingested twice
        st.rerun()
    if state.get("upload_summary"):
        st.success(state.upload_summary)
    for error in state.get("upload_errors", []):
        st.error(error)


def answer_settings(service: FolioService) -> dict[str, Any]:
    s = service.settings
    with st.expander("Answer settings"):
        if s.llm_url:  # the server decides the model; the GGUF picker would change nothing
            models = {s.llm_model: s.llm_model}
            label = s.llm_model
            served = f" ({s.llm_server_model})" if s.llm_server_model else ""
            st.caption(f"Model: the LLM server at {s.llm_url}{served}")
        else:
            models = available_models(s)
            label = st.selectbox("Model", list(models), key="model")
        prompts = [p for p in available_prompts() if p != "condense-question"]
        prompt = st.selectbox("Prompt style", prompts, index=prompts.index(s.prompt)
                              if s.prompt in prompts else 0, key="prompt")  # fmt: skip
        modes = ["quote", "generate", "quote+generate"]
        mode = st.selectbox(
            "Answer mode", modes, index=modes.index(s.answer_mode), key="answer-mode",
            help="quote: the best sentence from your documents (no generation); generate: the "
            "model's answer; quote+generate: the model's answer when the sources support it.",
        )  # fmt: skip
        k = st.slider("Sources (k)", 1, 20, s.k, key="k")
        temperature = st.slider("Temperature", 0.0, 2.0, float(s.temperature), 0.05, key="temp")
        top_p = st.slider("Top-p", 0.05, 1.0, float(s.top_p), 0.05, key="top-p")
        top_k = st.slider("Top-k", 1, 200, int(s.top_k), key="top-k")
        max_tokens = st.slider("Max tokens", 16, 1024, int(s.max_tokens), 16, key="max-tokens")
    return {
        "llm_model": models[label], "k": k, "prompt": prompt, "answer_mode": mode,
        "temperature": temperature, "top_p": top_p, "top_k": top_k, "max_tokens": max_tokens,
    }  # fmt: skip


@st.cache_data(ttl=30, show_spinner=False)
def _doctor(settings_json: str, llm_model: str) -> dict[str, Any]:
    from folio.doctor import diagnose
    from folio.settings import Settings

    settings = Settings.model_validate_json(settings_json).model_copy(
        update={"llm_model": llm_model}
    )
    return diagnose(settings)


def status(service: FolioService, llm_model: str) -> None:
    report = _doctor(service.settings.model_dump_json(), llm_model)
    llm = report["llm"]
    server = report.get("llm_server")
    if server:
        state = f"serves {server['model']}" if server.get("reachable") else "NOT REACHABLE"
        model = f"LLM server {server['url']} {state}"
    elif llm.get("found"):
        gpu = "on" if llm["layers_offloaded"] else "off"
        model = f"{Path(llm['path']).name} · GPU offload {gpu} ({llm['reason']})"
    else:
        model = f"model {llm['name']} NOT FOUND"
    cols = report["chroma"].get("collections", [])
    this = next((c for c in cols if c["name"] == st.session_state.collection), None)
    size = f"{this['documents']} documents, {this['chunks']} chunks" if this else "empty"
    st.caption(f"{model} · Chroma {report['chroma']['mode']} · index: {size}")
    for problem in report["problems"]:
        st.warning(f"{problem['what']}: {problem['fix']}")


def sources(service: FolioService, answer: Answer, answer_id: str) -> None:
    if not answer.sources:
        return
    cited = {c.n for c in answer.citations}
    title = "Sources" if not answer.refused else "Closest passages (not relevant enough)"
    st.caption(title)
    for hit in answer.sources:
        mark = " · cited" if hit.rank in cited else ""
        with st.expander(f"[{hit.rank}] {where(hit)} · relevance {hit.score:.2f}{mark}"):
            st.html(highlighted(hit.text, cited_passages(answer, hit)))
            if st.toggle(
                f"Open {('page ' + str(hit.page)) if hit.page else 'document'}",
                key=f"open-{answer_id}-{hit.rank}",
            ):
                _page_preview(hit.source, hit.page)
            path = Path(hit.source)
            if path.is_file():
                st.download_button(
                    f"Download {path.name}",
                    data=path.read_bytes(),
                    file_name=path.name,
                    key=f"dl-{answer_id}-{hit.rank}",
                )


def _page_preview(source: str, page: int | None) -> None:
    from app.previews import render_pdf_page

    if not Path(source).is_file():
        st.warning(f"{source} is no longer on disk.")
        return
    if page and source.lower().endswith(".pdf"):
        image = render_pdf_page(source, page)
        if image:
            st.image(image, caption=f"{Path(source).name}, page {page}", width=420)
    try:
        text = page_text(source, page) if page else _document_text(source)
    except Exception as exc:
        st.warning(f"{Path(source).name}: cannot read the page ({exc})")
        return
    st.html(f'<div class="folio-chunk folio-page">{html.escape(text)}</div>')


def _document_text(source: str) -> str:
    from ingest.loaders import load_document

    return "\n\n".join(s.text for s in load_document(Path(source)).sections)
