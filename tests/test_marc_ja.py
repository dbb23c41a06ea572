"""MARC-ja rebuilt by JGLUE's recipe (jaflow.data.marc_ja): each step, the published counts,
and JGLUE's own script as an oracle on the tiny world's miniature reviews file."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaflow.data.marc_ja import (
    TSV_HEADER,
    Review,
    apply_lists,
    rebuild,
    select_reviews,
    shuffle_split,
    write_tiny_reviews,
)
from jaflow.errors import DataError

# The fetched yahoojapan/JGLUE repository (git dir), for the oracle test only.
JGLUE_GIT = Path(os.environ.get("JAFLOW_JGLUE_GIT", "/work/.mirror/yahoojapan+JGLUE/repo"))
JGLUE_V110 = "6791a5003e6deaa6fb2458bcb3aa1f58dc52ef33"


def tsv(rows: list[tuple[str, int, str]]) -> list[str]:
    header = "\t".join(TSV_HEADER)
    lines = [header + "\n"]
    for rid, rating, body in rows:
        lines.append(
            "\t".join(
                [
                    "JP",
                    "1",
                    rid,
                    "P",
                    "0",
                    "t",
                    "c",
                    str(rating),
                    "0",
                    "0",
                    "N",
                    "Y",
                    "h",
                    body,
                    "d",
                ]
            )
            + "\n"
        )
    return lines


def test_selection_keeps_positive_negative_short_non_ascii_reviews_with_html_stripped():
    lines = tsv(
        [
            ("R1", 5, "とても<br />良い"),
            ("R2", 3, "普通です"),
            ("R3", 1, "ひどい"),
            ("R4", 4, "Great product!!"),
            ("R5", 2, "長" * 501),
            ("R6", 2, "長" * 500),
        ]
    )
    kept = list(select_reviews(lines, 500))
    assert [(r.review_id, r.label, r.sentence) for r in kept] == [
        ("R1", "positive", "とても良い"),
        ("R3", "negative", "ひどい"),
        ("R6", "negative", "長" * 500),
    ]


def test_bad_rows_name_the_line():
    with pytest.raises(DataError, match=r"x:2: star_rating 'five'"):
        list(select_reviews(tsv([("R1", "five", "良い")]), 500, "x"))  # type: ignore[list-item]


def test_the_published_counts_follow_from_the_ratio_split_and_the_filter_list():
    # JGLUE publishes train 187,528 and valid 5,654: with 0.94/0.03 that is n = 199,498 kept
    # reviews, int(n*0.97) - 187,528 = 5,985 valid, less the 331 ids of filter_review_id_list.
    reviews = [Review("文", "positive", f"R{i}") for i in range(199_498)]
    split = shuffle_split(reviews, [0.94, 0.03, 0.03])
    assert (len(split["train"]), len(split["valid"])) == (187_528, 5_985)
    filtered = {r.review_id for r in split["valid"][:331]}
    apply_lists(split, filtered, {})
    assert len(split["valid"]) == 5_654


def test_shuffle_is_random_seed_1():
    import random

    reviews = [Review("文", "positive", f"R{i}") for i in range(50)]
    expected = list(reviews)
    random.Random(1).shuffle(expected)
    assert shuffle_split(reviews, [0.5, 0.5, 0.0])["train"] == expected[:25]


def test_lists_must_be_valid_reviews_and_change_labels():
    split = {"train": [Review("a", "positive", "T1")], "valid": [Review("b", "negative", "V1")]}
    with pytest.raises(DataError, match="filter_list: 1 ids are train reviews"):
        apply_lists(split, {"T1"}, {})
    with pytest.raises(DataError, match="label_conv_list: V1 already has label negative"):
        apply_lists(split, set(), {"V1": "negative"})
    apply_lists(split, set(), {"V1": "positive"})
    assert split["valid"][0].label == "positive"


def test_rebuild_checks_the_lists_sha256_and_the_expected_counts(tmp_path):
    spec = write_tiny_reviews(tmp_path / "in", n=120)
    info = rebuild(spec, tmp_path / "out")
    assert info["counts"] == spec["expect"]
    train = [json.loads(x) for x in (tmp_path / "out" / "train-v1.1.json").read_text().splitlines()]
    valid = [json.loads(x) for x in (tmp_path / "out" / "valid-v1.1.json").read_text().splitlines()]
    assert len(train) == spec["expect"]["train"] and len(valid) == spec["expect"]["valid"]
    assert set(train[0]) == {"sentence", "label", "review_id"}
    filtered = set((tmp_path / "in" / "filter_valid.txt").read_text().split())
    assert filtered and not filtered & {r["review_id"] for r in valid + train}
    bad = dict(
        spec, expect={"train": spec["expect"]["train"] + 1, "valid": spec["expect"]["valid"]}
    )
    with pytest.raises(DataError, match="does not have the expected counts"):
        rebuild(bad, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    tampered = dict(spec, filter_list={"url": spec["filter_list"]["url"], "sha256": "0" * 64})
    with pytest.raises(DataError, match=r"jglue.marc_ja.filter_list: .* sha256"):
        rebuild(tampered, tmp_path / "bad2")


def _jglue_script() -> str:
    if not (JGLUE_GIT / "HEAD").exists():
        pytest.skip(
            f"the fetched yahoojapan/JGLUE repository is not at {JGLUE_GIT} (set JAFLOW_JGLUE_GIT)"
        )
    pytest.importorskip("zenhan", reason="JGLUE's marc-ja.py imports zenhan")
    return subprocess.run(
        [
            "git",
            "--git-dir",
            str(JGLUE_GIT),
            "show",
            f"{JGLUE_V110}:preprocess/marc-ja/scripts/marc-ja.py",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_rebuild_matches_jglues_own_script_on_the_miniature(tmp_path):
    """Oracle: JGLUE's marc-ja.py at v1.1.0, run on the same tiny TSV with the same lists."""
    script = tmp_path / "marc-ja.py"
    script.write_text(_jglue_script())
    spec = write_tiny_reviews(tmp_path / "in", n=300, seed=3)
    ours = rebuild(spec, tmp_path / "ours")
    ratio = [str(r) for r in spec["split_ratio"]]
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            "--positive-negative",
            "--output-dir",
            str(tmp_path / "theirs"),
            "--max-char-length",
            str(spec["max_char_length"]),
            "--version",
            "1.1",
            "--split-ratio",
            *ratio,
            "--filter-review-id-list-valid",
            spec["filter_list"]["url"],
            "--label-conv-review-id-list-valid",
            spec["label_conv_list"]["url"],
        ],
        input=gzip.decompress(Path(spec["reviews"]).read_bytes()),
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    for name in ("train", "valid"):
        theirs = [
            json.loads(x)
            for x in (tmp_path / "theirs" / f"{name}-v1.1.json").read_text().splitlines()
        ]
        mine = [
            json.loads(x)
            for x in (tmp_path / "ours" / f"{name}-v1.1.json").read_text().splitlines()
        ]
        assert mine == theirs, name
    assert ours["counts"]["valid"] > 0 and ours["kept"] > ours["counts"]["train"]
