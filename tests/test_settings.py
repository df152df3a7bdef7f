"""Settings: defaults, YAML file, FOLIO_* env and explicit overrides, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Folio
from folio.settings import SettingsError, load_settings


def test_precedence_defaults_yaml_env_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FOLIO_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    defaults = load_settings()
    assert defaults.data_dir == tmp_path / "xdg" / "folio"
    assert defaults.collection == "default" and defaults.n_gpu_layers == "auto"
    # Default chunks must fit all-MiniLM-L6-v2's 256-token window, special tokens included.
    assert defaults.chunk_size + 2 <= 256

    config = tmp_path / "folio.yaml"
    config.write_text("collection: from-yaml\nchunk_size: 120\ntemperature: 0.7\nn_gpu_layers: 0\n")
    from_yaml = load_settings(config)
    assert (from_yaml.collection, from_yaml.chunk_size, from_yaml.n_gpu_layers) == (
        "from-yaml",
        120,
        0,
    )

    monkeypatch.setenv("FOLIO_CHUNK_SIZE", "150")
    monkeypatch.setenv("FOLIO_DATA_DIR", str(tmp_path / "env-data"))
    with_env = load_settings(config)
    assert with_env.chunk_size == 150 and with_env.data_dir == tmp_path / "env-data"
    assert with_env.temperature == 0.7

    assert load_settings(config, chunk_size=99, collection=None).chunk_size == 99


def test_invalid_settings_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="chunk_overlap"):
        load_settings(chunk_size=50, chunk_overlap=60)
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("no_such_setting: 1\n")
    with pytest.raises(SettingsError, match="no_such_setting"):
        load_settings(bad)


def test_cli_reads_the_config_file(folio: Folio, docs: Path, tmp_path: Path) -> None:
    config = tmp_path / "team.yaml"
    config.write_text("collection: team-a\n")
    (docs / "a.txt").write_text("Team A keeps the spare keys in the red box.")
    assert folio.json("--config", config, "ingest", docs)["added"] == 1
    assert folio.json("sources", "--collection", "team-a")["documents"]
    assert folio.json("sources")["documents"] == []
    assert folio.json("sources", "--config", config)["documents"]


@pytest.mark.parametrize("name", ["api_key", "ui_password_hash", "llm_api_key"])
def test_a_secret_of_spaces_is_refused_and_an_empty_one_is_unset(name: str) -> None:
    with pytest.raises(SettingsError, match=f"{name}: .*blank"):
        load_settings(**{name: "   "})
    assert getattr(load_settings(**{name: ""}), name) is None
