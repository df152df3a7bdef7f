"""`folio doctor`: finds the packaged models, tells GPU offload honestly, fails with a fix."""

from __future__ import annotations

from pathlib import Path

import pytest

import llm_servers
from conftest import Folio, free_port
from folio import llm_runtime
from ingest.chunking import chunker_fingerprint
from llm_servers import LlamaServer

llama_server = llm_servers.llama_server  # a real llama_cpp.server (tests/llm_servers.py)


def test_doctor_reports_models_llama_cpp_chroma_and_index(folio: Folio, docs: Path) -> None:
    (docs / "a.md").write_text("# A\n\nSome text for the index.")
    folio.json("ingest", docs)
    report = folio.json("doctor")
    assert report["ok"] is True and report["problems"] == []
    assert report["embedding_model"]["found"] and Path(report["embedding_model"]["path"]).is_dir()
    llm = report["llm"]
    assert llm["path"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf") and llm["n_layers"] == 30
    assert report["llms_packaged"]["smollm2"] == llm["path"]
    assert report["llms_packaged"]["gemma-3-270m"]
    # This machine's llama.cpp is a CPU build: doctor must say so and offload nothing.
    assert report["llama_cpp"]["supports_gpu_offload"] is False
    assert llm["layers_offloaded"] == 0 and "CPU only" in llm["reason"]
    assert "AVX" in report["llama_cpp"]["system_info"] or report["llama_cpp"]["system_info"]
    assert report["chroma"]["mode"] == "embedded" and report["chroma"]["reachable"]
    assert report["chroma"]["collections"] == [
        {
            "name": "default", "documents": 1, "chunks": 1, "vectors": 1,
            "embedder": report["embedding_model"]["fingerprint"],
            "chunker": chunker_fingerprint(200, 32),
        }
    ]  # fmt: skip
    human = folio("doctor")
    assert human.exit_code == 0 and "GPU offload: off" in human.stdout


def test_doctor_names_the_fix_for_missing_parts(folio: Folio, tmp_path: Path) -> None:
    folio.env["FOLIO_LLM_MODEL"] = str(tmp_path / "nowhere.gguf")
    folio.env["FOLIO_CHROMA_URL"] = "http://127.0.0.1:9"
    result = folio("doctor")
    assert result.exit_code == 1
    assert "PROBLEM (LLM)" in result.stdout and ".gguf file path" in result.stdout
    assert "PROBLEM (Chroma)" in result.stdout and "chroma run" in result.stdout


def test_gpu_plan_offloads_all_layers_when_the_build_supports_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # FAKE: no GPU exists on this machine or in CI; this stands in for a CUDA build's answer.
    monkeypatch.setattr(llm_runtime, "supports_gpu_offload", lambda: True)
    plan = llm_runtime.plan_gpu_layers("auto", 30)
    assert (plan.n_gpu_layers, plan.layers_offloaded) == (-1, 30)
    assert llm_runtime.plan_gpu_layers(10, 30).layers_offloaded == 10
    monkeypatch.setattr(llm_runtime, "supports_gpu_offload", lambda: False)
    assert llm_runtime.plan_gpu_layers(10, 30).n_gpu_layers == 0


def test_doctor_reports_the_llm_server_and_the_model_it_serves(
    folio: Folio, llama_server: LlamaServer, tmp_path: Path
) -> None:
    folio.env["FOLIO_LLM_URL"] = llama_server.url
    # The GGUF file is not used for answers now: a missing one is no problem.
    folio.env["FOLIO_LLM_MODEL"] = str(tmp_path / "nowhere.gguf")
    report = folio.json("doctor")
    assert report["ok"] is True and report["problems"] == []
    assert report["llm_backend"] == "server" and report["llm"]["used"] is False
    server = report["llm_server"]
    assert server["url"] == llama_server.url and server["reachable"] is True
    assert server["model"] == str(llama_server.model_path) and server["error"] is None
    human = folio("doctor")
    assert human.exit_code == 0
    assert f"LLM server: {llama_server.url} (serves {llama_server.model_path})" in human.stdout
    assert "not used for answers" in human.stdout


def test_doctor_names_the_url_of_an_llm_server_that_is_down(folio: Folio) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    folio.env["FOLIO_LLM_URL"] = url
    result = folio("doctor", "--json")
    assert result.exit_code == 1
    report = result.json()
    assert report["ok"] is False and report["llm_server"]["reachable"] is False
    [problem] = report["problems"]
    assert problem["what"] == "LLM server"
    assert url in problem["fix"] and "not reachable" in problem["fix"]
    human = folio("doctor")
    assert f"LLM server: {url} (UNREACHABLE)" in human.stdout
    assert f"PROBLEM (LLM server): LLM server {url} is not reachable" in human.stdout
