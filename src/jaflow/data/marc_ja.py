"""MARC-ja rebuilt from the Amazon reviews file, by JGLUE's published recipe.

JGLUE (yahoojapan/JGLUE v1.1.0, README "MARC-ja" and preprocess/marc-ja) does not distribute
MARC-ja: it publishes the recipe and two id lists. jaflow's own implementation of it:

1. read `amazon_reviews_multilingual_JP_v1_00.tsv.gz` (tab-separated, a header line, Python
   `csv` quoting): review_id is column 2, star_rating column 7, review_body column 13;
2. `--positive-negative`: rating >= 4 is positive, <= 2 negative, 3 is dropped;
3. the body's HTML is stripped (BeautifulSoup, html.parser, `get_text()`);
4. a review whose characters are >= 90% `string.printable` is dropped (mostly ASCII);
5. `--max-char-length 500`: a longer review is dropped;
6. the kept reviews are shuffled with `random.seed(1)`, then split by ratio
   (0.94 / 0.03 / 0.03 by default: train = the first int(n*0.94), valid = up to
   int(n*(0.94+0.03)); the test part is not written);
7. valid drops the ids of `filter_review_id_list/valid.txt` and takes the labels of
   `label_conv_review_id_list/valid.txt` (each must change the label); neither list may name
   a train review.

Published counts (JGLUE README): train 187,528, valid 5,654, which pin n = 199,498 kept
reviews. Rows are written as JSON lines {"sentence", "label", "review_id"} to
`train-v1.1.json` and `valid-v1.1.json` (the v1.1 layout jaflow's JGLUE reader expects).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import random
import string
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jaflow.errors import DataError
from jaflow.io import atomic_path, sha256_file

SHUFFLE_SEED = 1
ASCII_RATE = 0.9
PRINTABLE = frozenset(string.printable)
REVIEW_ID, STAR_RATING, REVIEW_BODY = 2, 7, 13  # columns of the Amazon reviews TSV
TSV_HEADER = (
    "marketplace",
    "customer_id",
    "review_id",
    "product_id",
    "product_parent",
    "product_title",
    "product_category",
    "star_rating",
    "helpful_votes",
    "total_votes",
    "vine",
    "verified_purchase",
    "review_headline",
    "review_body",
    "review_date",
)
FILES = {"train": "train-v1.1.json", "valid": "valid-v1.1.json"}


@dataclass
class Review:
    sentence: str
    label: str
    review_id: str

    def row(self) -> dict[str, str]:
        return {"sentence": self.sentence, "label": self.label, "review_id": self.review_id}


def label_of(rating: int) -> str | None:
    """--positive-negative: 4-5 positive, 1-2 negative, 3 dropped."""
    if rating >= 4:
        return "positive"
    if rating <= 2:
        return "negative"
    return None


def strip_html(text: str) -> str:
    from bs4 import BeautifulSoup

    return BeautifulSoup(text, "html.parser").get_text()


def mostly_ascii(text: str) -> bool:
    return sum(c in PRINTABLE for c in text) / len(text) >= ASCII_RATE


def select_reviews(
    lines: Iterable[str], max_char_length: int, where: str = "reviews"
) -> Iterator[Review]:
    """Steps 1-5 over the TSV's text lines (header included), in file order."""
    csv.field_size_limit(10**7)
    reader = csv.reader(lines, delimiter="\t")
    header = next(reader, None)
    if header is None or len(header) <= REVIEW_BODY:
        raise DataError(f"{where}: not an Amazon reviews TSV (header {header!r})")
    for row in reader:
        line = reader.line_num
        if len(row) <= REVIEW_BODY:
            raise DataError(
                f"{where}:{line}: {len(row)} columns, expected at least {REVIEW_BODY + 1}"
            )
        try:
            rating = int(row[STAR_RATING])
        except ValueError:
            raise DataError(
                f"{where}:{line}: star_rating {row[STAR_RATING]!r} is not an integer"
            ) from None
        label = label_of(rating)
        if label is None:
            continue
        text = strip_html(row[REVIEW_BODY])
        if not text:
            raise DataError(f"{where}:{line}: review {row[REVIEW_ID]} has an empty body")
        if mostly_ascii(text) or len(text) > max_char_length:
            continue
        yield Review(text, label, row[REVIEW_ID])


def shuffle_split(reviews: list[Review], ratio: Sequence[float]) -> dict[str, list[Review]]:
    """Step 6: random.seed(1) shuffle (in place), then the ratio split."""
    if len(ratio) != 3 or abs(sum(ratio) - 1.0) > 1e-9:
        raise DataError(
            f"jglue.marc_ja.split_ratio: {list(ratio)} must be three ratios summing to 1"
        )
    random.Random(SHUFFLE_SEED).shuffle(reviews)
    n = len(reviews)
    n_train = int(n * ratio[0])
    n_valid_end = int(n * (ratio[0] + ratio[1]))
    return {"train": reviews[:n_train], "valid": reviews[n_train:n_valid_end]}


def apply_lists(
    split: dict[str, list[Review]], filter_ids: set[str], label_conv: Mapping[str, str]
) -> None:
    """Step 7, in place: valid loses filter_ids and takes label_conv's labels."""
    train_ids = {r.review_id for r in split["train"]}
    for name, ids in (("filter_list", filter_ids), ("label_conv_list", set(label_conv))):
        clash = sorted(ids & train_ids)
        if clash:
            raise DataError(
                f"jglue.marc_ja.{name}: {len(clash)} ids are train reviews (e.g. {clash[0]}): "
                "not the reviews file the lists were made for"
            )
    valid = []
    for r in split["valid"]:
        if r.review_id in filter_ids:
            continue
        if r.review_id in label_conv:
            new = label_conv[r.review_id]
            if new == r.label:
                raise DataError(
                    f"jglue.marc_ja.label_conv_list: {r.review_id} already has label {new}"
                )
            r.label = new
        valid.append(r)
    split["valid"] = valid


def read_filter_list(path: str | Path) -> set[str]:
    return {
        line.rstrip("\n")
        for line in Path(path).read_text(encoding="utf-8").splitlines()
        if line.strip()
    }


def read_label_conv(path: str | Path) -> dict[str, str]:
    out = {}
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if len(row) != 2 or row[1] not in ("positive", "negative"):
                raise DataError(
                    f"{path}:{lineno}: expected 'review_id,positive|negative', got {row!r}"
                )
            out[row[0]] = row[1]
    return out


def fetch_pinned(spec: Mapping[str, str], dest: Path, key: str) -> Path:
    """A list file by URL (or local path), kept only when its sha256 is the configured one."""
    url = spec["url"]
    with atomic_path(dest) as tmp:
        if "://" in url:
            with urllib.request.urlopen(url) as r:  # noqa: S310 (URL from config)
                tmp.write_bytes(r.read())
        else:
            tmp.write_bytes(Path(url).read_bytes())
        digest = sha256_file(tmp)
        if digest != spec["sha256"]:
            raise DataError(f"{key}: {url}: sha256 {digest} is not the configured {spec['sha256']}")
    return dest


def _open_reviews(path: Path) -> io.TextIOBase:
    if not path.is_file():
        raise DataError(f"jglue.marc_ja.reviews: {path} not found")
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    # universal newlines, as the recipe reads its stdin (a "\r" in a body reads as "\n")
    return io.TextIOWrapper(raw, encoding="utf-8")


def rebuild(spec: Mapping[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Rebuild MARC-ja into out_dir/{train,valid}-v1.1.json from jglue.marc_ja (filled)."""
    out_dir = Path(out_dir)
    reviews_path = Path(spec["reviews"])
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        filter_ids = read_filter_list(
            fetch_pinned(
                spec["filter_list"], tmp / "lists" / "filter_valid.txt", "jglue.marc_ja.filter_list"
            )
        )
        label_conv = read_label_conv(
            fetch_pinned(
                spec["label_conv_list"],
                tmp / "lists" / "label_conv_valid.txt",
                "jglue.marc_ja.label_conv_list",
            )
        )
        with _open_reviews(reviews_path) as f:
            kept = list(select_reviews(f, spec["max_char_length"], str(reviews_path)))
        split = shuffle_split(kept, spec["split_ratio"])
        apply_lists(split, filter_ids, label_conv)
        counts = {name: len(rows) for name, rows in split.items()}
        mismatches = [
            f"{k}: {counts[k]} rows, JGLUE publishes {v}"
            for k, v in spec["expect"].items()
            if counts[k] != v
        ]
        if mismatches:
            raise DataError(
                f"jglue.marc_ja: the rebuilt MARC-ja does not have the expected counts ({'; '.join(mismatches)}); "
                f"{reviews_path} is not the file JGLUE used, or it was changed"
            )
        files = {}
        for name, rows in split.items():
            text = "".join(json.dumps(r.row(), ensure_ascii=False) + "\n" for r in rows)
            (tmp / FILES[name]).write_text(text, encoding="utf-8")
            files[name] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        info = {
            "reviews": {"path": str(reviews_path), "sha256": sha256_file(reviews_path)},
            "kept": len(kept),
            "counts": counts,
            "expected": dict(spec["expect"]),
            "sha256": files,
            "filter_list": dict(spec["filter_list"]),
            "label_conv_list": dict(spec["label_conv_list"]),
        }
        (tmp / "manifest.json").write_text(
            json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    return info


# -- the tiny world's miniature ----------------------------------------------------------------

_BODIES = (
    "とても良い商品でした。また買いたいです。",
    "すぐに壊れてしまい残念です。",
    "普通の品質だと思います。",
    "<br />説明どおりで満足しています。<br />",
    "Great product, works as described.",
)


def write_tiny_reviews(
    dir: str | Path, n: int = 120, seed: int = 0, max_char_length: int = 500
) -> dict[str, Any]:
    """A miniature Amazon reviews TSV.gz and its two lists, in the real formats.

    Rows mix every case of the recipe: ratings 1-5 (3 dropped), HTML bodies, mostly-ASCII
    bodies (dropped) and over-long ones (dropped). The lists name valid reviews (two filtered,
    two relabelled). Returns the `jglue.marc_ja` settings for them, with the counts expected.
    """
    rnd = random.Random(seed)
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        rating = rnd.randint(1, 5)
        body = _BODIES[i % len(_BODIES)] + f"番号{i}。"
        if i % 17 == 0:
            body = "長い" * (max_char_length // 2 + 1)
        rows.append(
            [
                "JP",
                str(1000 + i),
                f"RTINY{i:05d}",
                f"P{i}",
                "0",
                "品",
                "Books",
                str(rating),
                "0",
                "0",
                "N",
                "Y",
                "見出し",
                body,
                "2015-01-01",
            ]
        )
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t", lineterminator="\n")
    writer.writerow(TSV_HEADER)
    writer.writerows(rows)
    reviews = dir / "amazon_reviews_multilingual_JP_v1_00.tsv.gz"
    reviews.write_bytes(gzip.compress(buf.getvalue().encode("utf-8"), mtime=0))
    kept = list(select_reviews(io.StringIO(buf.getvalue()), max_char_length))
    split = shuffle_split(kept, (0.8, 0.2, 0.0))
    valid = split["valid"]
    filter_ids = [r.review_id for r in valid[:2]]
    conv = [(r.review_id, "negative" if r.label == "positive" else "positive") for r in valid[2:4]]
    filter_path, conv_path = dir / "filter_valid.txt", dir / "label_conv_valid.txt"
    filter_path.write_text("".join(f"{i}\n" for i in filter_ids), encoding="utf-8")
    conv_path.write_text("".join(f"{i},{label}\n" for i, label in conv), encoding="utf-8")
    return {
        "reviews": str(reviews),
        "max_char_length": max_char_length,
        "split_ratio": [0.8, 0.2, 0.0],
        "filter_list": {"url": str(filter_path), "sha256": sha256_file(filter_path)},
        "label_conv_list": {"url": str(conv_path), "sha256": sha256_file(conv_path)},
        "expect": {"train": len(split["train"]), "valid": len(valid) - len(filter_ids)},
    }
