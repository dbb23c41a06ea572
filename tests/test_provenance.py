"""Content identity of models (jaflow.provenance) and path classification of `pretrained:`."""

from __future__ import annotations

import pytest

from jaflow.config import load_experiment
from jaflow.config.specs import classify_model_ref
from jaflow.errors import ConfigError
from jaflow.io import write_checksums
from jaflow.provenance import UNPINNED, digest, model_identity, path_identity


def test_identity_follows_content_not_path(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"weights")
        (d / "config.json").write_text("{}")
    assert path_identity(str(a)) == path_identity(str(b))  # same content, other path
    (b / "model.safetensors").write_bytes(b"other weights")
    assert path_identity(str(a)) != path_identity(str(b))


def test_identity_of_a_workflow_model_is_its_checksum_listing(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "model.safetensors").write_bytes(b"w1")
    write_checksums(d)
    first = path_identity(str(d))
    (d / "model.safetensors").write_bytes(b"w2")
    write_checksums(d)
    assert path_identity(str(d)) != first


def test_hub_identity_records_the_revision_or_unpinned():
    assert path_identity("org/model") == {"kind": "hub", "id": "org/model", "revision": UNPINNED}
    pinned = model_identity(
        {"pretrained": "org/model", "revision": "abc123", "tokenizer": "org/model"}
    )
    assert pinned["weights"]["revision"] == "abc123"
    assert (
        pinned["sha256"]
        != model_identity({"pretrained": "org/model", "tokenizer": "org/model"})["sha256"]
    )


def test_adapter_identity_covers_base_and_adapter(tmp_path):
    base, adapter = tmp_path / "base", tmp_path / "adapter"
    for d in (base, adapter):
        d.mkdir()
        (d / "w.safetensors").write_bytes(d.name.encode())
    args = {"pretrained": str(base), "peft": str(adapter), "tokenizer": str(adapter)}
    before = model_identity(args)
    (base / "w.safetensors").write_bytes(b"retrained base")
    assert model_identity(args)["sha256"] != before["sha256"]


def test_digest_ignores_key_order():
    assert digest({"a": 1, "b": [1, {"c": 2, "d": 3}]}) == digest(
        {"b": [1, {"d": 3, "c": 2}], "a": 1}
    )


@pytest.mark.parametrize(
    "ref, kind",
    [
        ("org/name", "hub"),
        ("tokyotech-llm/Swallow-7b-hf", "hub"),
        ("./models/x", "path"),
        ("/abs/path/model", "path"),
        ("~/models/x", "path"),
        ("a/b/c", "path"),  # not org/name
        ("gpt2", "path"),  # a bare name is no hub id of the form jaflow accepts
    ],
)
def test_pretrained_is_a_path_or_a_hub_id(ref, kind):
    assert classify_model_ref(ref) == kind


def test_a_hub_looking_ref_under_an_existing_folder_is_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    assert classify_model_ref("models/my_llama") == "path"


def config_with(pretrained: str) -> dict:
    return {"name": "t", "models": {"base": {"pretrained": pretrained}}}


@pytest.mark.parametrize("ref", ["/nonexistent/llama", "./models/my_llama", "../elsewhere/m"])
def test_a_missing_local_model_is_a_config_error_naming_the_key(ref, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ConfigError, match=r"models\.base\.pretrained: '.*' is a local path .* no such directory"
    ):
        load_experiment(config_with(ref))


def test_an_existing_local_model_and_a_hub_id_load(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    assert load_experiment(config_with("./m")).graph["base"].is_local
    assert not load_experiment(config_with("org/name")).graph["base"].is_local


def test_tiny_names_resolve_into_the_experiments_tiny_world():
    experiment = load_experiment(config_with("tiny:llama"))
    assert experiment.graph["base"].pretrained == "results/t/tiny/models/llama"
    assert experiment.uses_tiny
    with pytest.raises(
        ConfigError, match=r"models\.base\.pretrained: unknown tiny-world name 'tiny:bert'"
    ):
        load_experiment(config_with("tiny:bert"))


def test_missing_data_sources_are_config_errors():
    with pytest.raises(ConfigError, match=r"jglue\.data_dir: not set"):
        load_experiment(
            {
                "name": "t",
                "models": {"m": {"pretrained": "org/m"}},
                "jglue": {"runs": [{"suite": "jglue4", "models": ["m"]}]},
            }
        )
    with pytest.raises(
        ConfigError, match=r"jglue\.data_dir: JGLUE directory '/no/such/jglue' does not exist"
    ):
        load_experiment(
            {
                "name": "t",
                "models": {"m": {"pretrained": "org/m"}},
                "jglue": {
                    "data_dir": "/no/such/jglue",
                    "runs": [{"suite": "jglue4", "models": ["m"]}],
                },
            }
        )
    with pytest.raises(ConfigError, match=r"mtbench\.questions: not set"):
        load_experiment(
            {"name": "t", "models": {"m": {"pretrained": "org/m"}}, "mtbench": {"models": ["m"]}}
        )
    with pytest.raises(
        ConfigError,
        match=r"datasets\.d\.sources\.0\.path: source file 'nope\.jsonl' does not exist",
    ):
        load_experiment(
            {"name": "t", "datasets": {"d": {"sources": [{"name": "s", "path": "nope.jsonl"}]}}}
        )
