"""The workflow itself: the chain is wired, bad config stops before any job, sampling runs."""

import json

import pytest

pytestmark = pytest.mark.workflow

CHAIN = [
    "sample_dataset",
    "train",
    "select_checkpoint",
    "merge_moe",
    "jglue",
    "mtbench_answer",
    "mtbench_judge",
    "report",
]


def job_counts(output: str) -> dict[str, int]:
    counts, in_table = {}, False
    for line in output.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
        elif in_table and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
        elif in_table and parts and parts[0] == "total":
            break
    return counts


def test_dry_run_lists_the_whole_chain(run_workflow):
    proc = run_workflow(args=["-n"])
    counts = job_counts(proc.stdout + proc.stderr)
    for rule in CHAIN:
        assert counts.get(rule, 0) >= 1, (rule, counts)
    assert counts["train"] == 3 and counts["merge_moe"] == 1  # qlora, the judge, LISA on the merge


def test_schema_error_stops_before_any_job(run_workflow):
    proc = run_workflow(
        config={"models": {"tiny_qlora": {"train": {"lora_r": "sixty-four"}}}}, check=False
    )
    assert proc.returncode != 0
    assert (
        "models.tiny_qlora.train.lora_r: 'sixty-four' is not of type 'integer'"
        in proc.stderr + proc.stdout
    )
    assert not (proc.workdir / "results").exists()


def test_graph_error_stops_before_any_job(run_workflow):
    proc = run_workflow(
        config={"models": {"tiny_moe": {"experts": ["tiny_llama", "missing_model"]}}}, check=False
    )
    assert proc.returncode != 0
    assert "models.tiny_moe.experts: unknown model 'missing_model'" in proc.stderr + proc.stdout
    assert not (proc.workdir / "results").exists()


def test_data_stage_of_the_demo_runs(run_workflow):
    proc = run_workflow("results/demo/datasets/demo_mix/manifest.json")
    manifest = json.loads(
        (proc.workdir / "results/demo/datasets/demo_mix/manifest.json").read_text()
    )
    steps = manifest["sources"][0]["steps"]
    assert [list(s["rule"])[0] for s in steps] == ["dedup", "max_per_value", "min_chars"]
    assert steps[0]["after"] < steps[0]["before"]  # the tiny data has duplicates
    assert manifest["counts"]["validation"] == 16
    train = (proc.workdir / "results/demo/datasets/demo_mix/train.jsonl").read_text().splitlines()
    assert len(train) == manifest["counts"]["train"] > 0
    # a second run has nothing to do
    again = run_workflow("results/demo/datasets/demo_mix/manifest.json", args=["-n"])
    assert "Nothing to be done" in again.stdout + again.stderr


def test_an_experiment_config_stands_alone(run_workflow, tmp_path):
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(
        "models: {m: {pretrained: org/some-model}}\n"
        "jglue: {data_dir: data/jglue-v1.1, runs: [{suite: jglue4, models: [m]}]}\n"
        "reports: {r: {title: minimal}}\n"
    )  # nullable sections (bootstrap) left unset
    proc = run_workflow(configfiles=[experiment], default_config=False, args=["-n"])
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts.get("jglue") == 1 and "train" not in counts  # the demo's models are not merged in
    assert counts.get("report") == 1
