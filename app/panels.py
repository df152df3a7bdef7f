"""The page's sidebar panels: collections, documents (remove asks first), uploads, answer
settings (only those the answer mode uses) and the status line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from app import about
from app.previews import available_models
from folio.service import UPLOAD_TYPES, FolioService, ServiceError, Upload
from ingest.pipeline import IngestProgress
from prompts import available_prompts

DOCS_LISTED = 30
NEW_COLLECTION_POPOVER = "new-collection-popover"


def collections(service: FolioService) -> None:
    state = st.session_state
    names = service.collection_names()
    if state.collection not in names:
        names.append(state.collection)
    # Keyed, and synced before it is drawn: an unkeyed box's id changes with its index, which
    # made a switch back to the previous collection take two tries.
    if state.get("collection-choice") != state.collection:  # changed elsewhere: URL, Create
        state["collection-choice"] = state.collection
    st.selectbox("Collection", names, key="collection-choice", on_change=_choose_collection)
    # A keyed popover that tracks its state can be closed from Python: Create closes it.
    with st.popover(
        "New collection", icon=":material/add:", key=NEW_COLLECTION_POPOVER, on_change="rerun"
    ):
        with st.form("new-collection-form", border=False):  # Enter in the name creates it
            st.text_input("Name", key="new-collection", placeholder="lowercase-name")
            st.form_submit_button(
                "Create", key="create-collection", on_click=_create_collection, args=(service,)
            )
        if state.get("new-collection-error"):
            st.error(state["new-collection-error"])


def _choose_collection() -> None:
    state = st.session_state
    state.collection, state.messages = state["collection-choice"], []


def _create_collection(service: FolioService) -> None:
    state = st.session_state
    name = (state.get("new-collection") or "").strip()
    if not name:
        state["new-collection-error"] = "Type a name first."
        return
    try:
        service.create_collection(name)
    except ServiceError as exc:
        state["new-collection-error"] = exc.message
        return
    state.collection, state.messages = name, []
    state["new-collection"], state["new-collection-error"] = "", ""
    state[NEW_COLLECTION_POPOVER] = False  # callbacks run before widgets: this closes it


def documents(service: FolioService) -> None:
    docs = service.sources(st.session_state.collection)["documents"]
    st.subheader(f"Documents ({len(docs)})")
    if not docs:
        name = st.session_state.collection
        where = "" if name == "default" else f" --collection {name}"
        st.caption(f"No documents yet: upload some below, or run `folio ingest PATH{where}`.")
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
        pages = f"{counted(doc['pages'], 'page')} · " if doc["pages"] else ""
        name.markdown(f"**{_escape_md(path.name)}**")
        added = doc["ingested_at"][:16].replace("T", " ")
        name.caption(f"{pages}{counted(doc['chunks'], 'chunk')} · {added}")
        remove.button(
            "", icon=":material/delete:", key=f"rm-{doc['path']}", help=f"Remove {path.name}",
            on_click=_ask_to_remove, args=(doc["path"],),
        )  # fmt: skip
        if st.session_state.get("confirm-remove") == doc["path"]:
            _confirm_remove(service, doc)


def _ask_to_remove(path: str) -> None:
    st.session_state["confirm-remove"] = path


def _confirm_remove(service: FolioService, doc: dict[str, Any]) -> None:
    """A removal cannot be undone (the chunks go, an uploaded file is deleted): ask first."""
    name = Path(doc["path"]).name
    with st.container(border=True, key="confirm-remove-box"):
        st.markdown(
            f"Remove **{_escape_md(name)}** and its {counted(doc['chunks'], 'chunk')} from "
            f"**{_escape_md(st.session_state.collection)}**? This cannot be undone."
        )
        yes, no = st.columns(2)
        if yes.button("Remove", type="primary", key=f"confirm-rm-{doc['path']}"):
            st.session_state.pop("confirm-remove", None)
            removed = service.remove(st.session_state.collection, [doc["path"]])
            st.toast(f"Removed {name} ({counted(removed['chunks_removed'], 'chunk')})")
            about.refresh()
            st.rerun()
        if no.button("Cancel", key=f"cancel-rm-{doc['path']}"):
            st.session_state.pop("confirm-remove", None)
            st.rerun()


def counted(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


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


# On a narrow screen the sidebar (documents, uploads) hides behind a bare arrow at the top
# left: name it, so people find their documents without hunting.
NARROW_SCREEN_STYLE = """<style>
@media (max-width: 640px) {
  [data-testid="stExpandSidebarButton"] { width: auto; padding: 0 0.5rem; gap: 0.25rem; }
  [data-testid="stExpandSidebarButton"]::after { content: "Documents"; font-size: 0.95rem; }
}
</style>"""


def uploads(service: FolioService, place: str = "sidebar") -> None:
    """The upload box; `place` names a second one (the welcome's) so their keys differ."""
    state = st.session_state
    state.setdefault("uploader", 0)
    if place == "sidebar":
        st.html(NARROW_SCREEN_STYLE)
    limit = service.settings.max_file_mb
    files = st.file_uploader(
        f"Add documents (PDF, Markdown, text, HTML, DOCX, scanned images; up to {limit:g} MB each)",
        type=list(UPLOAD_TYPES),
        accept_multiple_files=True,
        key=f"uploader-{state.uploader}"
        if place == "sidebar"
        else f"{place}-uploader-{state.uploader}",
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
        state.upload_warnings = [  # pages OCR could not read: the file went in without them
            f"{Path(w['path']).name}, page {w['page']}: {w['warning']}" for w in report.warnings
        ]
        about.refresh()
        state.uploader += 1  # a fresh uploader: the same files are not ingested twice
        st.rerun()
    if state.get("upload_summary"):
        st.success(state.upload_summary)
    for error in state.get("upload_errors", []):
        st.error(error)
    for warning in state.get("upload_warnings", []):
        st.warning(warning)


GENERATION_KEYS = ("model", "prompt", "temp", "top-p", "top-k", "max-tokens")


def answer_settings(service: FolioService) -> dict[str, Any]:
    """The answer settings that apply to the chosen mode, as AskRequest fields.

    `quote` picks a sentence from the documents: only the mode and k apply, so only they are
    shown and returned. The generate modes add the model, prompt and sampling settings.
    """
    s = service.settings
    state = st.session_state
    for key in GENERATION_KEYS:  # kept while quote mode hides them (Streamlit drops the state
        if key in state:  # of widgets not drawn, unless the script set it itself)
            state[key] = state[key]
    with st.expander("Answer settings", icon=":material/tune:"):
        modes = ["quote", "generate", "quote+generate"]
        mode = st.selectbox(
            "Answer mode", modes, index=modes.index(s.answer_mode), key="answer-mode",
            help="quote: the best sentence from your documents (no generation); generate: the "
            "model's answer; quote+generate: the model's answer when the sources support it.",
        )  # fmt: skip
        k = st.slider("Sources (k)", 1, 20, s.k, key="k")
        chosen: dict[str, Any] = {"answer_mode": mode, "k": k}
        if mode != "quote":
            chosen.update(_generation_settings(service))
    return chosen


def _generation_settings(service: FolioService) -> dict[str, Any]:
    s = service.settings
    state = st.session_state

    def first(key: str, value: Any) -> Any:
        # The configured value the first time; afterwards the kept state decides (passing both
        # would make Streamlit warn on the page).
        return None if key in state else value

    if s.llm_url:  # the server decides the model; the GGUF picker would change nothing
        models = {s.llm_model: s.llm_model}
        label = s.llm_model
        served = f" ({s.llm_server_model})" if s.llm_server_model else ""
        st.caption(f"Model: the LLM server at {s.llm_url}{served}")
    else:
        models = available_models(s)
        if state.get("model") not in models:  # a model that disappeared: the default again
            state.pop("model", None)
        label = st.selectbox("Model", list(models), index=first("model", 0), key="model")
    prompts = [p for p in available_prompts() if p != "condense-question"]
    if state.get("prompt") not in prompts:
        state.pop("prompt", None)
    configured = prompts.index(s.prompt) if s.prompt in prompts else 0
    prompt = st.selectbox("Prompt style", prompts, index=first("prompt", configured), key="prompt")
    return {
        "llm_model": models[label],
        "prompt": prompt,
        "temperature": st.slider(
            "Temperature", 0.0, 2.0, first("temp", float(s.temperature)), 0.05, key="temp"
        ),
        "top_p": st.slider("Top-p", 0.05, 1.0, first("top-p", float(s.top_p)), 0.05, key="top-p"),
        "top_k": st.slider("Top-k", 1, 200, first("top-k", int(s.top_k)), key="top-k"),
        "max_tokens": st.slider(
            "Max tokens", 16, 1024, first("max-tokens", int(s.max_tokens)), 16, key="max-tokens"
        ),
    }


def status(service: FolioService, llm_model: str | None = None) -> None:
    """One status line for everyone, the operator's details in "About this server"."""
    about.status_line(service, llm_model)
    about.panel(service, st.session_state.collection, llm_model)
