"""An answer's sources, checkable in one click: listed in rank order with a labelled relevance
bar, `[n]` in the answer opens source n, and a source's page renders at a readable size with the
cited passage highlighted on it."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import streamlit as st

from app.render import (
    CITATION_SCRIPT,
    RELEVANCE_HELP,
    Passage,
    as_answer,
    cited_passages,
    highlighted,
    page_name,
    relevance,
    relevance_html,
    source_anchor,
    where,
)
from folio.service import FolioService
from ingest.loaders import IMAGE_EXTENSIONS
from retrieval.chain import Answer
from retrieval.search import SearchHit

MIN_HIGHLIGHTED_CHARS = 3  # a lone "$" or "%" of a table value would mark half the page


def show_sources(service: FolioService, answer: Answer | dict[str, Any], key: str) -> None:
    """The answer's sources (an Answer or its ask object). `key` keeps this answer's widgets
    apart; the expanders are keyed by the answer id, which `answer_html`'s `[n]` links name."""
    del service  # sources are read from the answer and the files it names
    answer = as_answer(answer)
    if not answer.sources:
        return
    # Our own static script (no document text): `[n]` links open and scroll to their source.
    st.html(CITATION_SCRIPT, unsafe_allow_javascript=True)
    cited = {c.n for c in answer.citations}
    title = "Sources" if not answer.refused else "Closest passages (not relevant enough)"
    st.caption(f"{title}, best ranked first", help=RELEVANCE_HELP)
    for hit in sorted(answer.sources, key=lambda h: h.rank):
        mark = " · cited" if hit.rank in cited else ""
        label = f"[{hit.rank}] {where(hit)} · {relevance(hit.score)[0]}{mark}"
        with st.expander(label, key=source_anchor(answer.answer_id, hit.rank)):
            st.html(relevance_html(hit.score))
            if hit.ocr:
                st.caption(ocr_mark(hit), help=OCR_HELP)
            passages = cited_passages(answer, hit)
            st.html(highlighted(hit.text, passages))
            what = f"page {hit.page}" if hit.page else "document"
            if st.toggle(f"Open {what}", key=f"open-{key}-{hit.rank}"):
                page_preview(hit, _passage_texts(hit, passages), f"{key}-{hit.rank}")
            path = Path(hit.source)
            if path.is_file():
                st.download_button(
                    f"Download {path.name}",
                    data=path.read_bytes(),
                    file_name=path.name,
                    key=f"dl-{key}-{hit.rank}",
                )


OCR_HELP = (
    "This page had no text layer (a scan or an image file): Folio read its text with OCR. "
    "The confidence is the recogniser's own (0 to 1); low values mean misread words are likely."
)


def ocr_mark(hit: SearchHit) -> str:
    """The small note on a source whose text OCR read, with its confidence."""
    if hit.ocr_confidence is None:
        return "read by OCR"
    return f"read by OCR (confidence {hit.ocr_confidence:.2f})"


def _passage_texts(hit: SearchHit, passages: list[Passage]) -> list[str]:
    """The cited passages as text, to find them on the rendered page."""
    texts = [hit.text[p[0] : p[1]] if isinstance(p, tuple) else p for p in passages]
    return [t for t in texts if len(t.strip()) >= MIN_HIGHLIGHTED_CHARS]


def page_preview(hit: SearchHit, passages: list[str], key: str) -> None:
    """The source's page as an image (PDFs) with the passages highlighted, then its text."""
    from app.previews import page_text, render_pdf_page

    source, page = hit.source, hit.page
    if not Path(source).is_file():
        st.warning(f"{Path(source).name} is no longer on the server (removed or moved).")
        return
    if page and source.lower().endswith(".pdf"):
        preview = render_pdf_page(source, page, tuple(passages))
        if preview:
            caption = f"{Path(source).name}, {page_name(page, hit.page_label)}"
            if preview.highlights:
                caption += " · the cited passage is highlighted"
            if st.toggle("Full size", key=f"full-{key}", help="The page at its rendered size "
                         f"({preview.width} px wide); scroll to move around it."):  # fmt: skip
                data = base64.b64encode(preview.png).decode("ascii")
                st.html(
                    f'<div class="folio-full-page" style="overflow:auto;max-height:85vh">'
                    f'<img src="data:image/png;base64,{data}" width="{preview.width}" '
                    f'alt="{html.escape(caption)}"></div>'
                )
                st.caption(caption)
            else:
                st.image(preview.png, caption=caption, width="stretch", output_format="PNG")
    elif page and source.lower().endswith(IMAGE_EXTENSIONS):
        frame = _image_frame(source, page)
        if frame is not None:
            st.image(frame, caption=f"{Path(source).name}, page {page}", width="stretch")
    try:
        text = page_text(source, page) if page else _document_text(source)
    except Exception as exc:
        st.warning(f"{Path(source).name}: cannot read the page ({exc})")
        return
    st.html(f'<div class="folio-chunk folio-page">{html.escape(text)}</div>')


def _image_frame(source: str, page: int) -> Any:
    """Frame `page` (1-based) of an image file, or None when it cannot be read."""
    from PIL import Image, ImageSequence

    try:
        with Image.open(source) as image:
            for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
                if number == page:
                    return frame.convert("RGB")
    except Exception:  # a file changed or damaged since it was ingested: show its text only
        return None
    return None


def _document_text(source: str) -> str:
    from ingest.loaders import load_document

    return "\n\n".join(s.text for s in load_document(Path(source)).sections)
