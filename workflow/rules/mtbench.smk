# Japanese MT-Bench: answers per model, then an LLM judge, then per-category scores.
# Answer jobs see only what changes answers; judge prompts, reference answers and judge settings
# reach the judge jobs alone, so a judge-side edit never regenerates answers.
import sys

from jaflow.evaluate.mtbench.backends import check_judge_env, judge_key_problem


MTBENCH_JUDGE_RULES = ("mtbench_judge", "mtbench_pairwise")

if config["mtbench"]["models"] and judge_key_problem(config["mtbench"]["judge"]):
    # a dry run only warns; a real run that has judge jobs to run stops in onstart, when the
    # DAG is built and before any job (answers included) runs
    print(f"WARNING: {judge_key_problem(config['mtbench']['judge'])}", file=sys.stderr)


onstart:
    if any(job.rule.name in MTBENCH_JUDGE_RULES for job in workflow.dag.needrun_jobs()):
        check_judge_env(config["mtbench"]["judge"])


MTBENCH_JUDGE_SETTINGS = (
    "judge",
    "turns",
    "ref_categories",
    "batch_size",
    "strip_reasoning",
    "judge_prompts",
    "reference_answers",
)


def mtbench_questions_source(wildcards):
    return mtbench_sources()["questions"]


# mtbench.answer keys that change what a backend answers; the others (concurrency, timeout,
# retries, the key variable) only change how it is asked, and the job reads them from the config
MTBENCH_ANSWER_KEYS_BY_BACKEND = {
    "hf": ("backend",),
    "vllm": ("backend", "gpu_memory_utilization"),
    "openai": ("backend", "base_url", "endpoint", "served_models", "send_repetition_penalty"),
}


def mtbench_answer_settings(wildcards):
    """Sampling keys and this model's answer backend: all that changes its answers."""
    answer = config["mtbench"]["answer"]
    keys = MTBENCH_ANSWER_KEYS_BY_BACKEND[answer["backend"]]
    shown = {k: answer[k] for k in keys}
    if "served_models" in shown:
        # this model's served name only: renaming another model's never reruns this one
        shown["served_models"] = {
            m: n for m, n in answer["served_models"].items() if m == wildcards.model
        }
    return {**mtbench_answer_params(wildcards), "answer": shown}


def mtbench_judge_settings(wildcards):
    """Everything the judge job reads from mtbench.* (never an input of the answer jobs)."""
    return {k: config["mtbench"][k] for k in MTBENCH_JUDGE_SETTINGS}


def mtbench_judge_side_files(wildcards):
    """Local reference-answer and judge-prompt files (URLs are fetched by the job)."""
    mt = config["mtbench"]
    prompts = mt["judge_prompts"]
    if isinstance(prompts, dict):
        prompts = prompts["source"]
    return [s for s in (mt["reference_answers"], prompts) if _local(s)]


rule mtbench_answer:
    input:
        model=model_inputs,
        questions=mtbench_questions,
    output:
        "results/mtbench/{bench}/model_answer/{model}.jsonl",
    params:
        model=hf_args,
        chat_format=chat_format,
        questions=mtbench_questions_source,
        mtbench=mtbench_answer_settings,
        seed=config["seed"],
    log:
        "logs/mtbench/{bench}/answer_{model}.log",
    conda:
        "../../envs/mtbench.yaml"
    script:
        "../scripts/mtbench_answer.py"


# No Snakemake `retries:` on the judge rules: refusals (400/401/403/404) are deterministic, and
# transient network faults are retried inside the job, which resumes from its cache when rerun.
rule mtbench_judge:
    input:
        answers="results/mtbench/{bench}/model_answer/{model}.jsonl",
        questions=mtbench_questions,
        judge_files=mtbench_judge_side_files,
        judge_model=mtbench_judge_inputs,
    output:
        judgments="results/mtbench/{bench}/model_judgment/{judge}/{model}.jsonl",
        scores="results/mtbench/{bench}/scores/{judge}/{model}.csv",
        usage="results/mtbench/{bench}/scores/{judge}/{model}.usage.json",
    params:
        mtbench=mtbench_judge_settings,
        questions=mtbench_questions_source,
        judge_hf=mtbench_judge_hf_args,
        cache="results/mtbench/{bench}/judge_cache/{judge}.jsonl",
    log:
        "logs/mtbench/{bench}/judge_{judge}_{model}.log",
    conda:
        "../../envs/mtbench.yaml"
    script:
        "../scripts/mtbench_judge.py"


rule mtbench_pairwise:
    input:
        answers="results/mtbench/{bench}/model_answer/{model}.jsonl",
        baseline=mtbench_baseline_answers,
        questions=mtbench_questions,
        judge_files=mtbench_judge_side_files,
        judge_model=mtbench_judge_inputs,
    output:
        judgments="results/mtbench/{bench}/pairwise/{judge}/{model}.jsonl",
        scores="results/mtbench/{bench}/pairwise/{judge}/{model}.csv",
    params:
        mtbench=mtbench_judge_settings,
        questions=mtbench_questions_source,
        baseline=lambda wildcards: config["mtbench"]["pairwise"]["baseline"],
        judge_hf=mtbench_judge_hf_args,
        cache="results/mtbench/{bench}/judge_cache/{judge}.jsonl",
    log:
        "logs/mtbench/{bench}/pairwise_{judge}_{model}.log",
    conda:
        "../../envs/mtbench.yaml"
    script:
        "../scripts/mtbench_pairwise.py"
