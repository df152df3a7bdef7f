"""Docker deployment: docker-compose.yml and its overrides validate (default run), and the CPU
stack really starts (marked `docker`, run by `make test-docker`): the images are built on the
debootstrap base from the wheelhouse, the sample documents go in through the `ingest` service, the
API answers with citations (and through the llama.cpp server), and the web UI loads."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, free_port

COMPOSE = shutil.which("docker-compose")
LOCAL = ["-f", "docker-compose.yml", "-f", "docker/compose.local.yml"]
CUDA = ["-f", "docker-compose.yml", "-f", "docker/compose.cuda.yml"]
API_KEY = "docker-test-key-0123456789abcdef"
PASSWORD = "paper crane quire"
BASE_IMAGE = "folio-base:bookworm"
needs_compose = pytest.mark.skipif(
    COMPOSE is None,
    reason="docker-compose is not installed (`make test-docker` installs it with apt-get)",
)


def compose_config(files: list[str], profile: str) -> dict[str, Any]:
    """`docker-compose config` of the real files, with the example env file standing in."""
    env = {**os.environ, "FOLIO_ENV_FILE": "docker/folio.env.example"}
    result = subprocess.run(
        [str(COMPOSE), *files, "--profile", profile, "config"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@needs_compose
@pytest.mark.parametrize(
    ("files", "profile", "llm_service"),
    [
        (["-f", "docker-compose.yml"], "cpu", "llm-cpu"),
        (["-f", "docker-compose.yml"], "gpu", "llm"),
        (LOCAL, "cpu", "llm-cpu"),
        (CUDA, "gpu", "llm"),
    ],
    ids=["cpu", "gpu", "local-cpu", "cuda-gpu"],
)
def test_compose_file_validates_and_publishes_only_on_loopback(
    files: list[str], profile: str, llm_service: str
) -> None:
    services = compose_config(files, profile)["services"]
    assert {"chroma", "models", "api", "ui", llm_service} <= set(services)
    for name, service in services.items():
        for port in service.get("ports", []):
            published = port if isinstance(port, str) else f"{port['host_ip']}:{port['published']}"
            assert str(published).startswith("127.0.0.1:"), (name, port)
        # Secrets come from the env file at run time, never from the compose file or an image.
        environment = service.get("environment", {})
        for secret in ("FOLIO_API_KEY", "FOLIO_UI_PASSWORD_HASH"):
            assert not environment.get(secret), (name, secret)
    for name in ("api", "ui"):
        assert services[name]["environment"]["FOLIO_CHROMA_URL"] == "http://chroma:8000"
        sources = {str(v).split(":")[0] if isinstance(v, str) else v["source"]
                   for v in services[name]["volumes"]}  # fmt: skip
        assert {"folio-data", "folio-uploads", "folio-models"} <= sources
    if profile == "gpu":
        devices = services["llm"]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]
    if files == CUDA:
        assert services["api"]["build"]["dockerfile"] == "Dockerfile.cuda"
        assert "nvidia/cuda" in services["api"]["build"]["args"]["BASE_IMAGE"]
        assert services["api"]["deploy"]["resources"]["reservations"]["devices"]


@needs_compose
def test_official_chroma_image_matches_the_chromadb_client() -> None:
    # A Chroma server of another version than the client can refuse the client's API calls.
    import chromadb

    image = compose_config(["-f", "docker-compose.yml"], "cpu")["services"]["chroma"]["image"]
    assert image == f"chromadb/chroma:{chromadb.__version__}"


@pytest.mark.parametrize(
    "dockerfile",
    ["Dockerfile", "Dockerfile.cuda", "docker/chroma.Dockerfile", "docker/llm.Dockerfile"],
)
def test_dockerfiles_build_with_the_classic_builder(dockerfile: str) -> None:
    """Docker 20.10's classic builder (Debian's; compose 1.29's) rejects BuildKit-only syntax."""
    text = (REPO / dockerfile).read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert not any(re.match(r"#\s*syntax\s*=", line) for line in lines)  # a BuildKit frontend
    assert "--mount" not in text and "RUN <<" not in text
    first_from = next(i for i, line in enumerate(lines) if line.startswith("FROM "))
    assert any(line.startswith("ARG BASE_IMAGE") for line in lines[:first_from])
    assert sum(line.startswith("FROM ") for line in lines) >= 2  # build stage + runtime stage
    final_stage = lines[max(i for i, line in enumerate(lines) if line.startswith("FROM ")) :]
    assert any(line.startswith("USER ") and "root" not in line for line in final_stage)
    assert any(line.startswith("HEALTHCHECK") for line in final_stage)
    if dockerfile == "Dockerfile.cuda":
        assert "-DGGML_CUDA=on" in text and "download.pytorch.org/whl/cu" in text
        assert "devel" in text and "runtime" in text


# --- the real stack (make test-docker) -----------------------------------------------------------


def run(command: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=timeout, **kwargs
    )
    assert result.returncode == 0, (
        f"{' '.join(command)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def http(
    url: str, body: dict[str, Any] | None = None, key: str | None = API_KEY, timeout: float = 300
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_until(check: Any, what: str, timeout: float, logs: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(2)
    raise AssertionError(f"{what} not ready within {timeout:.0f} s:\n{logs()}")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The compose stack, CPU profile, local override, on free 127.0.0.1 ports; torn down after."""
    if shutil.which("docker") is None or COMPOSE is None:
        pytest.fail("docker / docker-compose missing: run `make test-docker` (installs them)")
    if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode:
        pytest.fail(
            f"base image {BASE_IMAGE} missing: run `make docker-base` (or make test-docker)"
        )
    if not (REPO / "build" / "wheelhouse" / ".complete").is_file():
        pytest.fail("build/wheelhouse missing: run `make wheelhouse` (or make test-docker)")

    password_hash = subprocess.run(
        [sys.executable, "-m", "folio", "password-hash", "--stdin"],
        input=PASSWORD + "\n", capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    env_file = tmp_path / "folio.env"
    env_file.write_text(f"FOLIO_API_KEY={API_KEY}\nFOLIO_UI_PASSWORD_HASH={password_hash}\n")
    docs = tmp_path / "docs"
    subprocess.run([sys.executable, "-m", "folio.samples", str(docs)], check=True, cwd=REPO)
    docs.chmod(0o755)  # read by the container's non-root user
    ports = {name: free_port() for name in ("API_PORT", "UI_PORT", "CHROMA_PORT", "LLM_PORT")}
    project = f"foliotest{os.getpid()}"
    env = {
        **os.environ, **{k: str(v) for k, v in ports.items()},
        "FOLIO_ENV_FILE": str(env_file), "FOLIO_DOCS": str(docs),
        "COMPOSE_PROJECT_NAME": project, "COMPOSE_HTTP_TIMEOUT": "600",
    }  # fmt: skip
    compose = [str(COMPOSE), *LOCAL, "--profile", "cpu"]

    def logs() -> str:
        out = subprocess.run([*compose, "logs", "--tail", "40"], cwd=REPO, env=env,
                             capture_output=True, text=True)  # fmt: skip
        return out.stdout[-6000:]

    started = time.monotonic()
    try:
        # Builds folio:cpu, folio-chroma:local and folio-llm:local (each skipped when unchanged).
        run([str(REPO / "docker" / "build-images.sh")], 1800, env=env)
        built = time.monotonic()
        run([*compose, "up", "-d"], 600, env=env)
        api = f"http://127.0.0.1:{ports['API_PORT']}"
        wait_until(lambda: http(f"{api}/healthz", key=None, timeout=5)[0] == 200, "api", 300, logs)
        yield {"compose": compose, "env": env, "api": api, "logs": logs, "docs": docs,
               "ui": f"http://127.0.0.1:{ports['UI_PORT']}", "build_s": built - started,
               "password_hash": password_hash}  # fmt: skip
    finally:
        down = subprocess.run(
            [*compose, "--profile", "ingest", "down", "-v", "--remove-orphans"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        print(f"stack up and down in {time.monotonic() - started:.0f} s", file=sys.stderr)
        assert down.returncode == 0, down.stderr
        left = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"name={project}_"],
                              capture_output=True, text=True).stdout.split()  # fmt: skip
        assert not left, left


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_compose_stack_ingests_answers_with_citations_and_serves_the_ui(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    compose, env, api, logs = stack["compose"], stack["env"], stack["api"], stack["logs"]
    print(f"images built in {stack['build_s']:.0f} s", file=sys.stderr)

    # The one-shot ingest service adds the mounted folder (read-only) to the shared index.
    ingest = run([*compose, "--profile", "ingest", "run", "--rm", "ingest"], 900, env=env)
    report = json.loads(ingest.stdout.strip().splitlines()[-1])
    assert report["added"] == 2 and report["failed"] == [], report

    # The API needs its key; with it, a question gets a cited answer from the ingested samples.
    question = {"question": "What is the project mascot called?"}
    assert http(f"{api}/v1/ask", question, key=None)[0] == 401
    status, body = http(f"{api}/v1/ask", question)
    assert status == 200, body
    answer = json.loads(body)
    assert "Quire" in answer["answer"] and not answer["refused"], answer["answer"]
    assert answer["citations"] and answer["citations"][0]["source"].startswith("/docs/")

    # Generation goes to the llama.cpp server container (the cpu profile's llm); the answer is
    # whole (a probe arriving mid-answer must not cut the stream off).
    wait_until(lambda: http(f"{api}/readyz", timeout=10)[0] == 200, "readyz", 300, logs)
    status, body = http(
        f"{api}/v1/ask",
        {**question, "answer_mode": "generate", "max_tokens": 48},
    )
    assert status == 200, body
    generated = json.loads(body)
    assert generated["model"]["backend"] == "server" and "llm:8080" in generated["model"]["url"]
    assert generated["generated"].strip() and generated["citations"], generated

    # The api lists what the ingest container wrote to the shared volumes; it runs as non-root.
    sources = json.loads(http(f"{api}/v1/documents")[1])
    assert sorted(Path(d["path"]).name for d in sources["documents"]) == [
        "folio-user-guide.md", "folio-user-guide.pdf",
    ]  # fmt: skip
    uid = run([*compose, "exec", "-T", "api", "id", "-u"], 60, env=env).stdout.strip()
    assert uid != "0"

    # The web UI: Streamlit's health endpoint, the page, and a real login in Chromium.
    ui = stack["ui"]
    wait_until(lambda: http(f"{ui}/_stcore/health", key=None, timeout=5)[0] == 200, "ui", 300, logs)
    status, page = http(ui, key=None)
    assert status == 200 and b"<html" in page.lower()
    _log_in_and_see_the_documents(ui, tmp_path)


def _log_in_and_see_the_documents(url: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from browser import chromium, wait_for

    with chromium(tmp_path / "chromium-profile") as driver:
        driver.get(url)
        box = wait_for(
            driver, lambda d: d.find_elements(By.CSS_SELECTOR, "input[type='password']"), 90,
            "the password form",
        )  # fmt: skip
        box[0].send_keys(PASSWORD, Keys.ENTER)
        wait_for(
            driver,
            lambda d: [s for s in d.find_elements(By.CSS_SELECTOR, "[data-testid='stSidebar']")
                       if "folio-user-guide.pdf" in s.text],
            120,
            "the ingested documents in the side panel",
        )  # fmt: skip
