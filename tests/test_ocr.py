"""Scanned pages and image files are read by OCR (Tesseract, RapidOCR when it is missing), found
on their page and marked as OCR text; a page OCR cannot read is reported; with OCR off they fail
as before."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from api_server import api_env, api_server, wait_ready
from conftest import Folio

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
if not FONT.is_file():
    FONT = next(Path("/usr/share/fonts").rglob("*.ttf"), FONT)


def text_image(lines: list[str], width: int = 1200, height: int = 420) -> Image.Image:
    """A 'scan': black text on white (8 pt text at 300 dpi)."""
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(str(FONT), 34)
    for n, line in enumerate(lines):
        draw.text((40, 40 + n * 60), line, fill=0, font=font)
    return image


def blank_image(width: int = 1200, height: int = 420) -> Image.Image:
    return Image.new("L", (width, height), 255)


def write_pages_pdf(path: Path, pages: list[str | Image.Image]) -> Path:
    """A PDF page per item: a string is a text-layer page, an image a scanned page (no text)."""
    from fpdf import FPDF

    # The images' shape at 300 dpi (Folio renders scanned pages at 300 dpi): small, quick pages.
    pdf = FPDF(format=(101.6, 35.56))
    pdf.set_auto_page_break(False)
    for page in pages:
        pdf.add_page()
        if isinstance(page, str):
            pdf.set_font("helvetica", size=10)
            pdf.multi_cell(0, 5, page)
        else:
            pdf.image(page, x=0, y=0, w=pdf.w, h=pdf.h)
    pdf.output(str(path))
    return path


def hit_for(folio: Folio, query: str) -> dict[str, object]:
    results = folio.json("search", query, "--k", "1")["results"]
    assert results, f"nothing found for {query!r}"
    return dict(results[0])


def test_scanned_pdf_and_png_are_found_on_their_page(folio: Folio, docs: Path) -> None:
    write_pages_pdf(
        docs / "minutes.pdf",
        [
            text_image(["Minutes of the harbour board.", "The office opens at seven."]),
            text_image(["The vault code is kept by the", "treasurer Ada Lund."]),
        ],
    )
    text_image(["The boiler was replaced in March", "by Olsen Heating."]).save(docs / "note.png")

    report = folio.json("ingest", docs)
    assert (report["added"], report["failed"], report["warnings"]) == (2, [], [])

    vault = hit_for(folio, "Who keeps the vault code?")
    assert Path(str(vault["source"])).name == "minutes.pdf" and vault["page"] == 2
    assert "treasurer Ada Lund" in str(vault["text"])
    assert vault["ocr"] is True
    assert isinstance(vault["ocr_confidence"], float) and 0.8 < vault["ocr_confidence"] <= 1.0

    boiler = hit_for(folio, "When was the boiler replaced?")
    assert Path(str(boiler["source"])).name == "note.png" and boiler["page"] == 1
    assert "Olsen Heating" in str(boiler["text"]) and boiler["ocr"] is True

    documents = {Path(d["path"]).name: d for d in folio.json("sources")["documents"]}
    assert documents["note.png"]["title"] == "note" and documents["note.png"]["pages"] == 1
    assert documents["minutes.pdf"]["pages"] == 2

    # The answer's quote and sources say the text was read by OCR.
    asked = folio.json("ask", "Who keeps the vault code?")
    assert asked["quote"]["ocr"] is True and asked["quote"]["page"] == 2
    assert asked["quote"]["ocr_confidence"] == vault["ocr_confidence"]
    assert all("ocr" in s and "ocr_confidence" in s for s in asked["sources"])


def test_mixed_pdf_ocrs_only_its_empty_page(folio: Folio, docs: Path) -> None:
    write_pages_pdf(
        docs / "mixed.pdf",
        [
            "The ferry to Skerry leaves every ninety minutes in summer.",
            text_image(["The lighthouse was painted red", "and white in 1931."]),
        ],
    )
    assert folio.json("ingest", docs)["added"] == 1

    ferry = hit_for(folio, "How often does the ferry leave?")
    assert ferry["page"] == 1 and ferry["ocr"] is False and ferry["ocr_confidence"] is None
    lighthouse = hit_for(folio, "When was the lighthouse painted?")
    assert lighthouse["page"] == 2 and lighthouse["ocr"] is True
    assert "1931" in str(lighthouse["text"])


def test_ocr_off_fails_as_before(base_env: dict[str, str], docs: Path) -> None:
    folio = Folio({**base_env, "FOLIO_OCR": "false"})
    write_pages_pdf(docs / "scan.pdf", [text_image(["A scanned page."])])
    text_image(["A photographed page."]).save(docs / "photo.png")
    (docs / "fine.md").write_text("# Fine\n\nThe fire drill is on Thursday.")

    result = folio("ingest", docs)
    assert result.exit_code == 1
    errors = {
        Path(line.split(": ")[1]).name: line
        for line in result.stderr.splitlines()
        if line.startswith("error:")
    }
    assert set(errors) == {"scan.pdf", "photo.png"}
    assert "PDF has no text layer (scanned images?); OCR is not supported" in errors["scan.pdf"]
    assert "OCR" in errors["photo.png"] and "setting ocr" in errors["photo.png"]
    assert [Path(d["path"]).name for d in folio.json("sources")["documents"]] == ["fine.md"]


def test_multipage_tiff_gives_one_page_per_frame(folio: Folio, docs: Path) -> None:
    frames = [
        text_image(["Chapter one: the harbour."]),
        text_image(["Chapter two: the ferries."]),
        text_image(["The pier was rebuilt in 1962", "after the great storm."]),
    ]
    frames[0].save(docs / "book.tiff", save_all=True, append_images=frames[1:])
    assert folio.json("ingest", docs)["added"] == 1

    pier = hit_for(folio, "When was the pier rebuilt?")
    assert Path(str(pier["source"])).name == "book.tiff" and pier["page"] == 3
    assert folio.json("sources")["documents"][0]["pages"] == 3


def test_unreadable_pages_are_reported(folio: Folio, docs: Path) -> None:
    write_pages_pdf(
        docs / "letter.pdf", [text_image(["The rent is due on the first", "of the month."]),
                              blank_image()]
    )  # fmt: skip
    blank_image().save(docs / "blank.png")
    (docs / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG" * 20)

    result = folio("ingest", docs, "--json")
    report = result.json()
    assert result.exit_code == 1 and report["added"] == 1
    assert report["warnings"] == [
        {"path": str(docs / "letter.pdf"), "page": 2, "warning": report["warnings"][0]["warning"]}
    ]
    assert "no text found by OCR" in report["warnings"][0]["warning"]
    assert "warning:" in result.stderr and "letter.pdf" in result.stderr
    failed = {Path(f["path"]).name: f["error"] for f in report["failed"]}
    assert set(failed) == {"blank.png", "broken.jpg"}
    assert "OCR found no text" in failed["blank.png"]
    assert "image" in failed["broken.jpg"] and "\n" not in failed["broken.jpg"]
    assert hit_for(folio, "When is the rent due?")["page"] == 1


@pytest.mark.slow
def test_api_upload_accepts_images(tmp_path: Path) -> None:
    env = api_env(tmp_path / "data")
    png = tmp_path / "receipt.png"
    text_image(["Receipt: the canal lock keeper", "is Morag Innes."]).save(png)
    with api_server(env, tmp_path / "serve.log") as server:
        wait_ready(server)
        with server.client() as client:
            files = [("files", ("receipt.png", png.read_bytes(), "image/png"))]
            response = client.post("/v1/documents", params={"collection": "scans"}, files=files)
            assert response.status_code == 200, response.text
            report = response.json()
            assert report["added"] == 1 and report["failed"] == []
            found = client.post(
                "/v1/search", json={"query": "Who is the lock keeper?", "collection": "scans"}
            )
            assert found.status_code == 200, found.text
            top = found.json()["results"][0]
            assert "Morag Innes" in top["text"] and top["ocr"] is True and top["page"] == 1


def test_rapidocr_reads_scans_when_tesseract_is_missing(
    base_env: dict[str, str], docs: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A pip-only install (no `tesseract` on PATH) still reads scans, with RapidOCR, and says
    once how to get the faster engine; `folio doctor` names the engine in use."""
    no_tesseract = Folio({**base_env, "PATH": str(Path(sys.executable).parent)})
    text_image(["The gate code of the depot", "is held by Rui Costa."]).save(docs / "depot.png")

    assert no_tesseract.json("ingest", docs)["added"] == 1
    # The notice comes from the extraction worker, a child process writing to the terminal.
    notices = [line for line in capfd.readouterr().err.splitlines() if "tesseract" in line]
    assert notices == [
        "notice: tesseract is not installed, so OCR uses RapidOCR (about 8x slower per page); "
        "install it: apt-get install tesseract-ocr"
    ]
    hit = hit_for(no_tesseract, "Who holds the gate code?")
    assert "Rui Costa" in str(hit["text"]) and hit["ocr"] is True

    doctor = no_tesseract("doctor").stdout
    assert "OCR: rapidocr" in doctor and "apt-get install tesseract-ocr" in doctor
    assert "OCR: tesseract 5" in Folio(base_env)("doctor").stdout


def test_a_page_that_times_out_is_reported(tmp_path: Path) -> None:
    from ingest import tesseract
    from ingest.ocr import TesseractPageReader, image_frames, read_pages

    executable = tesseract.binary()
    assert executable, "tesseract is missing: `make ocr-engine`"
    text_image(["A page OCR takes too long on."]).save(tmp_path / "slow.png")
    warnings: list[tuple[int | None, str]] = []
    reader = TesseractPageReader(executable, timeout_s=0.001)
    read = read_pages(image_frames(tmp_path / "slow.png"), warnings, reader=reader)
    assert read[1].text == ""
    assert warnings == [(1, "OCR timed out after 0.001 s; the page is not indexed")]


def test_page_preview_reads_only_the_scanned_page(docs: Path) -> None:
    from app.previews import page_text

    pdf = write_pages_pdf(
        docs / "log.pdf",
        [
            "The tide tables are printed weekly.",
            text_image(["The crane was inspected", "on the ninth of May."]),
            text_image(["The forklift is blue."]),
        ],
    )
    assert page_text(str(pdf), 1) == "The tide tables are printed weekly."
    scanned = page_text(str(pdf), 2)
    assert "crane was inspected" in scanned and "forklift" not in scanned
    frames = [text_image(["First frame."]), text_image(["Second frame: the dock."])]
    frames[0].save(docs / "two.tiff", save_all=True, append_images=frames[1:])
    assert page_text(str(docs / "two.tiff"), 2) == "Second frame: the dock."
