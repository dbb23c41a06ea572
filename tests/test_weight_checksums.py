"""Published weight checksums (models.<base>.md5 / sha256) checked against the files."""

import hashlib

import pytest

from jaflow.errors import DataError
from jaflow.provenance import verify_model_files


def test_md5_and_sha256_of_each_named_file_are_checked(tmp_path):
    weights = b"\x00\x01weights" * 1000
    (tmp_path / "pytorch_model.bin").write_bytes(weights)
    (tmp_path / "config.json").write_text("{}")
    md5, sha = hashlib.md5(weights).hexdigest(), hashlib.sha256(weights).hexdigest()
    checked = verify_model_files(
        str(tmp_path),
        {"md5": {"pytorch_model.bin": md5.upper()}, "sha256": {"pytorch_model.bin": sha}},
    )
    assert checked == {"pytorch_model.bin": {"md5": md5, "sha256": sha}}
    # seed 002's card: the 2023/07/31 model's MD5 is not the file's
    with pytest.raises(DataError, match=r"models.x.md5: .*pytorch_model.bin .* expects edf190a3"):
        verify_model_files(
            str(tmp_path),
            {"md5": {"pytorch_model.bin": "edf190a323c0ae63f71476700fb0b462"}},
            key="models.x",
        )
    with pytest.raises(DataError, match="model.safetensors is not a file"):
        verify_model_files(str(tmp_path), {"sha256": {"model.safetensors": sha}})
    assert verify_model_files(str(tmp_path), {}) == {}
