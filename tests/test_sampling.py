"""Dataset sampling: each rule's counts, determinism, balance, manifests and bad input."""

import json
from pathlib import Path

import pytest

from jaflow.config import prepare_config
from jaflow.data.mix import build_mix
from jaflow.errors import DataError
from jaflow.io import write_jsonl


def rows(n, source="a", short_every=0):
    out = []
    for i in range(n):
        instruction = (
            "短い" if short_every and i % short_every == 0 else f"これは指示の文章です番号{i}"
        )
        out.append(
            {
                "instruction": instruction,
                "input": "",
                "output": f"これは応答の文章です番号{i}",
                "source": f"{source}{i % 4}",
            }
        )
    return out


def outputs(tmp_path: Path, tag: str = "out") -> dict:
    d = tmp_path / tag
    return {
        "train": d / "train.jsonl",
        "validation": d / "validation.jsonl",
        "manifest": d / "manifest.json",
    }


def filled(spec: dict) -> dict:
    """A dataset spec as rules receive it: validated, schema defaults filled."""
    return prepare_config({"datasets": {"mix": spec}})["datasets"]["mix"]


def mix(tmp_path, sources, tag="out", seed=7, **spec):
    spec = filled({"template": "alpaca_ja", "validation": {"size": 0}, "sources": sources, **spec})
    out = outputs(tmp_path, tag)
    manifest = build_mix("mix", spec, seed, out)
    train = [json.loads(line) for line in out["train"].read_text().splitlines()]
    return manifest, train, out


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "src.jsonl"
    write_jsonl(path, rows(40, short_every=5))
    return str(path)


def test_all_keeps_every_row(tmp_path, src):
    manifest, train, _ = mix(tmp_path, [{"name": "s", "path": src, "rules": [{"all": True}]}])
    assert len(train) == 40 and manifest["counts"]["per_source"] == {"s": 40}


def test_random_n(tmp_path, src):
    _, train, _ = mix(tmp_path, [{"name": "s", "path": src, "rules": [{"random": 7}]}])
    assert len(train) == 7 and len({r["id"] for r in train}) == 7


def test_head_n_keeps_the_first(tmp_path, src):
    _, train, _ = mix(tmp_path, [{"name": "s", "path": src, "rules": [{"head": 3}]}], shuffle=False)
    assert [r["id"] for r in train] == ["s:0", "s:1", "s:2"]


def test_max_per_value_caps_each_value(tmp_path, src):
    _, train, _ = mix(
        tmp_path,
        [{"name": "s", "path": src, "rules": [{"max_per_value": {"column": "source", "n": 3}}]}],
    )
    assert len(train) == 12  # 4 values of `source`, 10 rows each, at most 3 each
    per_value = {}
    for r in train:
        per_value[int(r["id"].split(":")[1]) % 4] = (
            per_value.get(int(r["id"].split(":")[1]) % 4, 0) + 1
        )
    assert per_value == {0: 3, 1: 3, 2: 3, 3: 3}


def test_min_chars_drops_short_rows(tmp_path, src):
    manifest, train, _ = mix(
        tmp_path,
        [
            {
                "name": "s",
                "path": src,
                "rules": [{"min_chars": {"fields": ["instruction", "output"], "k": 11}}],
            }
        ],
    )
    assert len(train) == 32  # every 5th instruction is 2 characters long
    assert all("短い" not in r["prompt"] for r in train)
    assert manifest["sources"][0]["steps"][0] == {
        "rule": {"min_chars": {"fields": ["instruction", "output"], "k": 11}},
        "before": 40,
        "after": 32,
    }


def test_dedup(tmp_path):
    path = tmp_path / "dup.jsonl"
    write_jsonl(path, rows(5) + rows(5))
    _, train, _ = mix(tmp_path, [{"name": "s", "path": str(path), "rules": [{"dedup": {}}]}])
    assert len(train) == 5


def test_rules_compose_in_order(tmp_path, src):
    manifest, train, _ = mix(
        tmp_path,
        [
            {
                "name": "s",
                "path": src,
                "rules": [
                    {"min_chars": {"k": 11}},
                    {"max_per_value": {"column": "source", "n": 5}},
                    {"random": 10},
                ],
            }
        ],
    )
    steps = [(s["before"], s["after"]) for s in manifest["sources"][0]["steps"]]
    assert steps == [(40, 32), (32, 20), (20, 10)] and len(train) == 10


def test_equal_per_source_like_seed_000(tmp_path):
    paths = []
    for name, n in (("snow", 50), ("tydi", 30), ("xlsum", 80)):
        p = tmp_path / f"{name}.jsonl"
        write_jsonl(p, rows(n, source=name))
        paths.append({"name": name, "path": str(p)})
    manifest, train, _ = mix(tmp_path, paths, equal_per_source=20)
    assert manifest["counts"]["per_source"] == {"snow": 20, "tydi": 20, "xlsum": 20}
    assert len(train) == 60
    with pytest.raises(DataError, match="'tydi' has 30 rows .* fewer than the 40"):
        mix(tmp_path, paths, tag="again", equal_per_source=40)


def test_total_split_equally(tmp_path):
    paths = []
    for name in ("a", "b", "c"):
        p = tmp_path / f"{name}.jsonl"
        write_jsonl(p, rows(20, source=name))
        paths.append({"name": name, "path": str(p)})
    manifest, _, _ = mix(tmp_path, paths, total=31)
    assert manifest["counts"]["per_source"] == {"a": 11, "b": 10, "c": 10}


def test_same_seed_byte_identical_other_seed_differs(tmp_path, src):
    spec = [{"name": "s", "path": src, "rules": [{"random": 10}]}]
    _, _, a = mix(tmp_path, spec, tag="a", validation={"size": 3})
    _, _, b = mix(tmp_path, spec, tag="b", validation={"size": 3})
    _, _, c = mix(tmp_path, spec, tag="c", seed=8, validation={"size": 3})
    for key in ("train", "validation"):
        assert a[key].read_bytes() == b[key].read_bytes()
    assert a["train"].read_bytes() != c["train"].read_bytes()


def test_validation_split_and_manifest(tmp_path, src):
    manifest, train, out = mix(
        tmp_path, [{"name": "s", "path": src}], validation={"fraction": 0.25}
    )
    validation = out["validation"].read_text().splitlines()
    assert len(train) == 30 and len(validation) == 10
    assert {r["id"] for r in train}.isdisjoint(json.loads(v)["id"] for v in validation)
    assert manifest["seed"] == 7 and manifest["counts"]["total"] == 40
    assert len(manifest["sources"][0]["input"]["sha256"]) == 64
    assert len(manifest["outputs"]["train"]["sha256"]) == 64


def test_rows_are_rendered_for_prompt_masking(tmp_path, src):
    _, train, _ = mix(tmp_path, [{"name": "s", "path": src, "rules": [{"head": 1}]}], shuffle=False)
    row = train[0]
    assert set(row) == {"id", "source", "prompt", "response"}
    assert row["prompt"].endswith("### 応答:") and row["response"] == "\nこれは応答の文章です番号0"


def test_column_mapping_and_other_formats(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"q": ["質問です" * 3], "a": ["回答です" * 3]})
    for fmt in ("csv", "parquet"):
        path = tmp_path / f"s.{fmt}"
        frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
        _, train, _ = mix(
            tmp_path,
            [{"name": "s", "path": str(path), "columns": {"instruction": "q", "output": "a"}}],
            tag=fmt,
        )
        assert train[0]["response"] == "\n" + "回答です" * 3


def test_multi_turn_conversations(tmp_path):
    path = tmp_path / "conv.jsonl"
    write_jsonl(
        path,
        [
            {
                "messages": [
                    {"from": "human", "value": "こんにちは"},
                    {"from": "gpt", "value": "はい"},
                    {"from": "human", "value": "元気?"},
                    {"from": "gpt", "value": "元気です"},
                ]
            }
        ],
    )
    _, train, _ = mix(
        tmp_path,
        [{"name": "c", "path": str(path), "conversations": "messages"}],
        template="rinna_chat",
    )
    assert (
        train[0]["prompt"]
        == "ユーザー: こんにちは<NL>システム: はい<NL>ユーザー: 元気?<NL>システム: "
    )
    assert train[0]["response"] == "元気です"


def test_bad_json_line_names_file_and_line_and_writes_nothing(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n\n{"instruction": "c", "output": \n')
    out = outputs(tmp_path)
    with pytest.raises(DataError, match=rf"{path}:3: invalid JSON"):
        build_mix("mix", filled({"sources": [{"name": "s", "path": str(path)}]}), 1, out)
    assert not out["train"].parent.exists() or not any(out["train"].parent.iterdir())


def test_missing_mapped_column_names_file_line_and_column(tmp_path):
    path = tmp_path / "s.jsonl"
    write_jsonl(path, [{"instruction": "a", "output": "b"}, {"instruction": "c"}])
    out = outputs(tmp_path)
    with pytest.raises(DataError, match=rf"{path}:2: missing column 'output'"):
        build_mix("mix", filled({"sources": [{"name": "s", "path": str(path)}]}), 1, out)
    assert not out["manifest"].exists()


def test_empty_after_filtering_names_the_rule(tmp_path, src):
    out = outputs(tmp_path)
    with pytest.raises(DataError, match=r"datasets.mix.sources\[0\] \('s'\): rule \{'min_chars'"):
        build_mix(
            "mix",
            filled(
                {"sources": [{"name": "s", "path": src, "rules": [{"min_chars": {"k": 1000}}]}]}
            ),
            1,
            out,
        )
    assert not out["train"].exists()


def test_hub_source_goes_through_datasets_load_dataset(tmp_path):
    # A local dataset directory takes the same load_dataset path as a hub id, offline.
    repo = tmp_path / "hub_repo"
    write_jsonl(repo / "train.jsonl", rows(12))
    manifest, train, _ = mix(
        tmp_path, [{"name": "h", "hub": str(repo), "split": "train", "rules": [{"random": 5}]}]
    )
    assert len(train) == 5
    assert manifest["sources"][0]["input"]["hub"] == str(repo)
    assert manifest["sources"][0]["rows_read"] == 12


# -- expected counts (seed 004 states the card's) --------------------------------------------


def test_expected_counts_are_recorded_and_a_mismatch_warns(tmp_path, src, caplog):
    sources = [{"name": "s", "path": src, "rules": [{"random": 7}], "expect": 9}]
    with caplog.at_level("WARNING"):
        manifest, train, _ = mix(tmp_path, sources, expect=7)
    assert len(train) == 7
    assert (manifest["sources"][0]["expected"], manifest["sources"][0]["actual"]) == (9, 7)
    assert manifest["expected"]["mismatches"] == [
        "datasets.mix.sources[0] ('s'): expected 9 rows, got 7"
    ]
    assert "expected 9 rows, got 7" in caplog.text


def test_expected_counts_met_give_no_mismatch(tmp_path, src):
    manifest, _, _ = mix(
        tmp_path, [{"name": "s", "path": src, "rules": [{"random": 7}], "expect": 7}], expect=7
    )
    assert manifest["expected"] == {
        "total": 7,
        "actual_total": 7,
        "strict": False,
        "mismatches": [],
    }


def test_strict_expected_counts_stop_naming_each_and_write_nothing(tmp_path, src):
    sources = [{"name": "s", "path": src, "rules": [{"random": 7}], "expect": 9}]
    with pytest.raises(
        DataError, match=r"\('s'\): expected 9 rows, got 7(.|\n)*expected 10 rows in total, got 7"
    ):
        mix(tmp_path, sources, tag="strict", expect=10, strict=True)
    assert not (tmp_path / "strict").exists()


# -- tagged conversations (seed 004's roleplay) -----------------------------------------------

ZEPHYR = (
    "<|system|>You are Ann, a pirate captain.</s>\n<|user|>Who are you?</s>\n"
    "<|assistant|>I am Ann, captain of this ship.</s>\n<|user|>Where to?</s>\n"
    "<|assistant|>To the south seas!</s>\n<|user|>Bye</s>"
)


def test_zephyr_text_parses_into_turns_and_trains_only_the_last_reply(tmp_path):
    path = tmp_path / "rp.jsonl"
    write_jsonl(path, [{"text": ZEPHYR}])
    _, train, _ = mix(
        tmp_path,
        [
            {
                "name": "rp",
                "path": str(path),
                "conversations": "text",
                "conversation_format": "zephyr",
            }
        ],
        template="alpaca",
    )
    row = train[0]
    assert row["response"] == "\nTo the south seas!"  # the trailing user turn has no reply: dropped
    assert "You are Ann, a pirate captain.\n\nWho are you?" in row["prompt"]
    assert "I am Ann, captain of this ship." in row["prompt"] and "Where to?" in row["prompt"]
    for tag in ("<|system|>", "<|user|>", "<|assistant|>", "</s>", "Bye"):
        assert tag not in row["prompt"] + row["response"]


def test_chatml_text_parses_into_turns(tmp_path):
    path = tmp_path / "c.jsonl"
    text = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"
    write_jsonl(path, [{"t": text}])
    _, train, _ = mix(
        tmp_path,
        [{"name": "c", "path": str(path), "conversations": "t", "conversation_format": "chatml"}],
        template="rinna_chat",
    )
    assert train[0]["prompt"] == "ユーザー: Be brief.<NL><NL>2+2?<NL>システム: "
    assert train[0]["response"] == "4"


def test_bad_tagged_text_names_the_row(tmp_path):
    path = tmp_path / "bad.jsonl"
    write_jsonl(path, [{"text": ZEPHYR}, {"text": "no tags at all"}])
    with pytest.raises(
        DataError, match=rf"{path}:2: column 'text' \(zephyr\): text before the first tag"
    ):
        mix(
            tmp_path,
            [
                {
                    "name": "rp",
                    "path": str(path),
                    "conversations": "text",
                    "conversation_format": "zephyr",
                }
            ],
        )
    write_jsonl(path, [{"text": "<|user|>only a question</s>"}])
    with pytest.raises(DataError, match=rf"{path}:1: .*needs a user turn, then an assistant turn"):
        mix(
            tmp_path,
            [
                {
                    "name": "rp",
                    "path": str(path),
                    "conversations": "text",
                    "conversation_format": "zephyr",
                }
            ],
            tag="b",
        )


# -- large hub sources: Arrow-level selection, the same rows as reading every row ----------------


def test_hub_random_reads_only_the_picked_rows_and_matches_the_list_path(tmp_path):
    repo = tmp_path / "hub_repo"
    write_jsonl(repo / "train.jsonl", rows(200))
    flat = tmp_path / "flat.jsonl"
    write_jsonl(flat, rows(200))
    rules = [{"random": 9}, {"min_chars": {"k": 5}}]
    hub_manifest, hub_train, _ = mix(
        tmp_path, [{"name": "s", "hub": str(repo), "rules": rules}], tag="hub"
    )
    file_manifest, file_train, _ = mix(
        tmp_path, [{"name": "s", "path": str(flat), "rules": rules}], tag="file"
    )
    src = hub_manifest["sources"][0]
    assert (src["rows_read"], src["rows_loaded"], src["rows_used"]) == (200, 9, 9)
    assert hub_train == file_train  # same ids, prompts and responses for the same seed
    assert src["input"]["revision"] == "unpinned"
    _, other, _ = mix(
        tmp_path, [{"name": "s", "hub": str(repo), "rules": rules}], tag="seed8", seed=8
    )
    assert {r["id"] for r in other} != {r["id"] for r in hub_train}


def test_hub_revision_and_data_dir_reach_load_dataset_and_the_manifest(tmp_path, monkeypatch):
    import datasets

    repo = tmp_path / "hub_repo"
    write_jsonl(repo / "japanese" / "train.jsonl", rows(6, source="ja"))
    write_jsonl(repo / "english" / "train.jsonl", rows(6, source="en"))
    seen = []
    real = datasets.load_dataset

    def recording(*args, **kwargs):  # the real loader, with its arguments recorded
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", recording)
    manifest, train, _ = mix(
        tmp_path, [{"name": "s", "hub": str(repo), "data_dir": "japanese", "revision": "0123abc"}]
    )
    assert len(train) == 6  # only the japanese folder
    assert seen == [{"split": "train", "revision": "0123abc", "data_dir": "japanese"}]
    described = manifest["sources"][0]["input"]
    assert (described["revision"], described["data_dir"], described["rows"]) == (
        "0123abc",
        "japanese",
        6,
    )
