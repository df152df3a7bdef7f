"""What the server runs on: a one-line status for everyone, the details in "About this server".

End users need to know whether they can ask questions; operators need the GPU offload, the
llama.cpp build, where Chroma keeps the index and how big it is. The details live in a closed
expander so nobody reads a CUDA rebuild hint by accident.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from folio.service import FolioService


@st.cache_data(ttl=30, show_spinner=False)
def _doctor(settings_json: str, llm_model: str) -> dict[str, Any]:
    from folio.doctor import diagnose
    from folio.settings import Settings

    settings = Settings.model_validate_json(settings_json).model_copy(
        update={"llm_model": llm_model}
    )
    return diagnose(settings)


def refresh() -> None:
    """Forget the cached report (after an upload or a remove changed the index size)."""
    _doctor.clear()


def report(service: FolioService, llm_model: str | None = None) -> dict[str, Any]:
    """`folio doctor --json` for these settings, cached for 30 s (it touches the store)."""
    return _doctor(service.settings.model_dump_json(), llm_model or service.settings.llm_model)


def status_line(service: FolioService, llm_model: str | None = None) -> None:
    """One caption an end user understands: ready, or what does not work (no fixes here).

    `llm_model` None means no model generates (quote mode): a missing LLM does not matter then.
    """
    found = report(service, llm_model)
    problems = [p for p in found["problems"] if llm_model or not p["what"].startswith("LLM")]
    if problems:
        what = ", ".join(sorted({p["what"] for p in problems}))
        st.caption(
            f":material/error: Not ready: {what} unavailable. "
            "Details for the operator are under About this server."
        )
        return
    if not llm_model:
        st.caption(":material/check_circle: Ready: answers quote your documents.")
        return
    server = found.get("llm_server")
    model = "an LLM server" if server else Path(found["llm"].get("path") or "").name or "a model"
    st.caption(f":material/check_circle: Ready: answers from {model}.")


def panel(service: FolioService, collection: str, llm_model: str | None = None) -> None:
    """The operator's diagnostics in a closed expander: model and GPU offload, llama.cpp build,
    Chroma location and index size, the LLM server, and each problem with its fix."""
    found = report(service, llm_model)
    with st.expander("About this server", icon=":material/dns:"):
        for problem in found["problems"]:
            st.warning(f"{problem['what']}: {problem['fix']}")
        lines = [*_model_lines(found), *_store_lines(found, collection)]
        st.markdown("\n".join(f"- {line}" for line in lines))


def _model_lines(found: dict[str, Any]) -> list[str]:
    server = found.get("llm_server")
    if server:
        state = "reachable" if server.get("reachable") else "**not reachable**"
        served = f", model `{server['model']}`" if server.get("model") else ""
        return [f"LLM server: `{server['url']}`, {state}{served}"]
    llm = found["llm"]
    if not llm.get("found"):
        return [f"LLM: `{llm.get('name')}` **not found**"]
    offloaded = llm.get("layers_offloaded") or 0
    lines = [
        f"LLM: `{Path(llm['path']).name}` (in this process, {_threads(llm.get('n_threads'))})",
        f"GPU offload: {'on' if offloaded else 'off'}, {offloaded}/{llm.get('n_layers')} "
        f"layers. {llm.get('reason', '')}",
    ]
    build = found.get("llama_cpp") or {}
    if build:
        lines.append(f"llama.cpp: llama-cpp-python {build.get('version')}")
        lines.append(f"llama.cpp build: `{build.get('system_info', '').strip()}`")
    return lines


def _threads(n: Any) -> str:
    return "1 thread" if n == 1 else f"{n} threads"


def _store_lines(found: dict[str, Any], collection: str) -> list[str]:
    chroma = found["chroma"]
    where = chroma.get("location") or chroma.get("url") or ""
    size = f", {chroma['bytes'] / 1e6:.1f} MB on disk" if chroma.get("bytes") else ""
    lines = [f"Chroma: {chroma.get('mode')} at `{where}`{size}"]
    this = next((c for c in chroma.get("collections", []) if c["name"] == collection), None)
    if this:
        docs, chunks = this["documents"], this["chunks"]
        lines.append(
            f"Index of '{collection}': {docs} document{'s' * (docs != 1)}, "
            f"{chunks} chunk{'s' * (chunks != 1)}"
        )
    else:
        lines.append(f"Index of '{collection}': empty")
    lines.append(f"Data folder: `{found.get('data_dir')}`")
    return lines
