"""Which OCR engine reads scanned pages best: character error rate and seconds per page.

    python bench/ocr_engines.py [--sec-pages 8] [--prose-pages 3] [--threads 1,0] [--out FILE]

Pages come from known text: pages of the SEC 10-Q filings in ../shared/datasets/sec10q/docs
(their text layer, read by pdfium, is the reference) and prose pages typeset here with fpdf2 in
DejaVu Serif (the typeset text is the reference). Each page is rasterised with pypdfium2 in grey
at the engine's resolution, as Folio renders a PDF page without a text layer, and read by:

- RapidOCR (rapidocr-onnxruntime, Folio's `ingest.ocr.PageImageToText`, reading order included)
  at 200 and 300 dpi;
- Tesseract 5 (the Debian `tesseract-ocr` CLI, `-l eng`) at 300 dpi, when installed, with
  automatic page segmentation (`--psm 3`, plain text output, reads a table column by column) and
  as one uniform block (`--psm 6`, row by row) through Folio's own path
  (`ingest.tesseract.read_image`: the page piped in, TSV output rebuilt in reading order).
  Folio reads scans with the latter; the table names the Tesseract version.

CER = Levenshtein distance / reference length, both texts with whitespace runs collapsed to one
space (reading order still counts: a table read column by column costs). Threads: `1` is one
intra-op thread (onnxruntime) or OMP_THREAD_LIMIT=1 (Tesseract); `0` is the engine's default
(all cores). Tesseract's time includes starting its process (~0.1 s). CPU s/page (this process
and its children) is steadier than wall time when other work shares the machine. Skips the SEC
pages cleanly when ../shared/datasets is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SEC_DOCS = REPO.parent / "shared" / "datasets" / "sec10q" / "docs"
SERIF = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf")
PROSE = (
    "The harbour office opens at seven in the morning and closes at five, except on public "
    "holidays, when the duty officer can be reached by telephone. Ferries to the outer islands "
    "leave every ninety minutes in summer and three times a day in winter; tickets are sold on "
    "board. The Skerry lighthouse was painted red and white in 1931 by the keeper Ada Lund, who "
    "kept its log for twenty-two years. Net revenue for the quarter was $42.7 million, up 12% "
    "from the same quarter a year earlier, while operating expenses rose to $18.3 million. "
)


@dataclass(frozen=True)
class Page:
    name: str
    pdf: Path
    number: int  # 1-based
    reference: str


def normalise(text: str) -> str:
    return " ".join(text.split())


def levenshtein(a: str, b: str) -> int:
    """Edit distance by Myers/Hyyrö's bit-parallel algorithm (Python ints as bit vectors):
    fast enough for whole pages without a compiled dependency."""
    if not a:
        return len(b)
    m = len(a)
    full = (1 << m) - 1
    last = 1 << (m - 1)
    peq: dict[str, int] = {}
    for i, char in enumerate(a):
        peq[char] = peq.get(char, 0) | (1 << i)
    pv, mv, score = full, 0, m
    for char in b:
        eq = peq.get(char, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | ~(xh | pv)
        mh = pv & xh
        if ph & last:
            score += 1
        elif mh & last:
            score -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = mh | ~(xv | ph) & full
        mv = ph & xv
    return score


def cer(reference: str, read: str) -> float:
    ref, hyp = normalise(reference), normalise(read)
    return levenshtein(ref, hyp) / max(1, len(ref))


def sec_pages(count: int, seed: int) -> list[Page]:
    """Pages with a real text layer (at least 1,500 characters), from different filings."""
    import pypdfium2 as pdfium

    if not SEC_DOCS.is_dir():
        print(f"skipping SEC pages: {SEC_DOCS} is absent", file=sys.stderr)
        return []
    rng = random.Random(seed)
    files = sorted(SEC_DOCS.glob("*.pdf"))
    rng.shuffle(files)
    pages: list[Page] = []
    for pdf in files:
        if len(pages) >= count:
            break
        document = pdfium.PdfDocument(str(pdf))
        numbers = list(range(1, len(document) + 1))
        rng.shuffle(numbers)
        for number in numbers:
            text = document[number - 1].get_textpage().get_text_range()
            if len(normalise(text)) >= 1500:
                pages.append(Page(f"{pdf.stem} p{number}", pdf, number, text))
                break
        document.close()
    return pages


def prose_pages(count: int, folder: Path) -> list[Page]:
    from fpdf import FPDF

    pdf = FPDF(format="letter")
    pdf.add_font("serif", fname=str(SERIF))
    texts = []
    for n in range(count):
        pdf.add_page()
        size = (11, 10, 9)[n % 3]  # body text sizes of real reports and letters
        pdf.set_font("serif", size=size)
        text = (PROSE * 6)[n * 40 :]
        pdf.multi_cell(0, size * 0.55, text)
        texts.append(text)
    path = folder / "prose.pdf"
    pdf.output(str(path))
    return [Page(f"prose {n + 1} ({(11, 10, 9)[n % 3]} pt)", path, n + 1, t) for n, t in
            enumerate(texts)]  # fmt: skip


def render(page: Page, dpi: int) -> Any:
    from ingest.ocr import render_pdf_pages

    return next(render_pdf_pages(page.pdf, [page.number], dpi))[1]


def rapidocr(threads: int) -> Callable[[Any], str]:
    from ingest.ocr import PageImageToText

    reader = PageImageToText(threads=threads)
    return lambda image: reader.read(image).text


def folio_tesseract(threads: int) -> Callable[[Any], str]:
    """Folio's engine exactly (it always runs one thread per process: OMP_THREAD_LIMIT=1)."""
    from ingest import tesseract as tesseract_engine

    executable = tesseract_engine.binary()
    assert executable
    return lambda image: tesseract_engine.read_image(executable, image, timeout_s=600)[0]


def tesseract(threads: int, psm: int = 3) -> Callable[[Any], str]:
    env = dict(os.environ)
    if threads:
        env["OMP_THREAD_LIMIT"] = str(threads)

    def read(image: Any) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            png = Path(tmp) / "page.png"
            image.save(png)
            done = subprocess.run(
                ["tesseract", str(png), "stdout", "--psm", str(psm), "-l", "eng"],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
            return done.stdout

    return read


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (Tesseract): steadier than wall time
    on a shared machine."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sec-pages", type=int, default=8)
    parser.add_argument("--prose-pages", type=int, default=3)
    parser.add_argument("--threads", default="1,0", help="comma-separated; 0 = engine default")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        pages = sec_pages(args.sec_pages, args.seed) + prose_pages(args.prose_pages, Path(tmp))
        candidates: list[tuple[str, int, Callable[[int], Callable[[Any], str]]]] = [
            ("rapidocr", 200, rapidocr),
            ("rapidocr", 300, rapidocr),
        ]
        if shutil.which("tesseract"):
            candidates.append(("tesseract psm3", 300, tesseract))
            candidates.append(("tesseract psm6 (Folio)", 300, folio_tesseract))
        else:
            print("tesseract not installed: apt-get install -y tesseract-ocr", file=sys.stderr)
        rows = []
        for threads in [int(t) for t in args.threads.split(",")]:
            engines = {(name, dpi): make(threads) for name, dpi, make in candidates}
            for engine in engines.values():  # load models and warm up outside the timing
                engine(render(pages[-1], 100))
            results: dict[tuple[str, int], list[tuple[float, float, float]]] = {
                k: [] for k in engines
            }
            for page in pages:
                images = {dpi: render(page, dpi) for dpi in {dpi for _, dpi in engines}}
                # Interleaved per page: background load from other work hits each engine alike.
                for (name, dpi), engine in engines.items():
                    started, cpu_started = time.perf_counter(), cpu_seconds()
                    text = engine(images[dpi])
                    seconds = time.perf_counter() - started
                    cpu = cpu_seconds() - cpu_started
                    results[(name, dpi)].append((cer(page.reference, text), seconds, cpu))
                    print(f"{name:22} {dpi} dpi t={threads} {page.name:28} "
                          f"CER {results[(name, dpi)][-1][0]:.3f} {seconds:.2f} s {cpu:.2f} cpu-s",
                          file=sys.stderr)  # fmt: skip
            for (name, dpi), values in results.items():
                paired = list(zip(values, pages, strict=True))
                sec = [c for (c, _, _), p in paired if p.pdf.parent == SEC_DOCS]
                prose = [c for (c, _, _), p in paired if p.pdf.parent != SEC_DOCS]
                rows.append({
                    "engine": name, "dpi": dpi, "threads": threads or "default",
                    "cer_sec": round(statistics.fmean(sec), 4) if sec else None,
                    "cer_prose": round(statistics.fmean(prose), 4) if prose else None,
                    "cer_median": round(statistics.median(c for c, _, _ in values), 4),
                    "s_per_page": round(statistics.fmean(s for _, s, _ in values), 2),
                    "cpu_s_per_page": round(statistics.fmean(c for _, _, c in values), 2),
                    "pages": len(values),
                })  # fmt: skip
    from ingest import tesseract as tesseract_engine

    executable = tesseract_engine.binary()
    print(f"Tesseract: {tesseract_engine.version(executable) if executable else 'not installed'}; "
          f"{len(pages)} pages; {time.strftime('%Y-%m-%d %H:%M')}")  # fmt: skip
    print("| engine | dpi | threads | CER SEC | CER prose | median CER | s/page | CPU s/page |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['engine']} | {row['dpi']} | {row['threads']} | {row['cer_sec']} | "
            f"{row['cer_prose']} | {row['cer_median']} | {row['s_per_page']} | "
            f"{row['cpu_s_per_page']} |"
        )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
