# Japanese MT-Bench: answers per model, then an LLM judge, then per-category scores.


def mtbench_sources(wildcards=None):
    """Question, reference and judge-prompt files (local paths or URLs; null prompts = jaflow's)."""
    mt = config["mtbench"]
    return canonical({k: mt[k] for k in ("questions", "reference_answers", "judge_prompts")})


def mtbench_answer_sources(wildcards):
    """Answers read only the questions: judge prompts and references never regenerate them."""
    return {"questions": config["mtbench"]["questions"]}


def _local(source):
    return bool(source) and not str(source).startswith(("http://", "https://"))


MTBENCH_ANSWER_KEYS = (
    "max_new_tokens",
    "num_choices",
    "batch_size",
    "top_p",
    "repetition_penalty",
    "temperature",
)
MTBENCH_JUDGE_KEYS = ("judge", "turns", "ref_categories", "batch_size")


def mtbench_answer_params(wildcards):
    """Only what changes the answers, so a judge setting never regenerates them."""
    return canonical({k: config["mtbench"][k] for k in MTBENCH_ANSWER_KEYS})


def mtbench_judge_params(wildcards):
    return canonical({k: config["mtbench"][k] for k in MTBENCH_JUDGE_KEYS})


def mtbench_questions(wildcards):
    source = config["mtbench"]["questions"]
    return source if _local(source) else []


def mtbench_judge_files(wildcards):
    sources = mtbench_sources()
    return [sources[k] for k in ("reference_answers", "judge_prompts") if _local(sources[k])]


def mtbench_judge_inputs(wildcards):
    return TARGETS.judge_inputs()


mtbench_judge_hf_args = params(lambda w: TARGETS.judge_hf_args())


def mtbench_baseline_answers(wildcards):
    pairwise = config["mtbench"]["pairwise"]
    return pairwise["answers"] or L.mtbench_answers(wildcards.bench, pairwise["baseline"])


rule mtbench_answer:
    input:
        model=model_inputs,
        questions=mtbench_questions,
    output:
        L.mtbench_answers("{bench}", "{model}"),
    params:
        model=hf_args,
        chat_format=chat_format,
        sources=mtbench_answer_sources,
        mtbench=mtbench_answer_params,
        seed=config["seed"],
    log:
        L.log("mtbench", "{bench}/answer_{model}"),
    conda:
        "../../envs/mtbench.yaml"
    script:
        "../scripts/mtbench_answer.py"


rule mtbench_judge:
    input:
        answers=L.mtbench_answers("{bench}", "{model}"),
        questions=mtbench_questions,
        judge_files=mtbench_judge_files,
        judge_model=mtbench_judge_inputs,
    output:
        judgments=L.mtbench_judgments("{bench}", "{judge}", "{model}"),
        scores=L.mtbench_scores("{bench}", "{judge}", "{model}"),
    params:
        mtbench=mtbench_judge_params,
        sources=mtbench_sources,
        judge_hf=mtbench_judge_hf_args,
        cache=L.judge_cache("{judge}"),
    # judge APIs can fail transiently; a rerun resumes from the cache
    retries: 2 if config["mtbench"]["judge"]["backend"] == "openai" else 0
    log:
        L.log("mtbench", "{bench}/judge_{judge}_{model}"),
    conda:
        "../../envs/mtbench.yaml"
    script:
        "../scripts/mtbench_judge.py"


rule mtbench_pairwise:
    input:
        answers=L.mtbench_answers("{bench}", "{model}"),
        baseline=mtbench_baseline_answers,
        questions=mtbench_questions,
        judge_files=mtbench_judge_files,
        judge_model=mtbench_judge_inputs,
    output:
        judgments=L.mtbench_pairwise("{bench}", "{judge}", "{model}", "jsonl"),
        scores=L.mtbench_pairwise("{bench}", "{judge}", "{model}", "csv"),
    params:
        mtbench=mtbench_judge_params,
        sources=mtbench_sources,
        baseline=config["mtbench"]["pairwise"] and config["mtbench"]["pairwise"]["baseline"],
        judge_hf=mtbench_judge_hf_args,
        cache=L.judge_cache("{judge}"),
    log:
        L.log("mtbench", "{bench}/pairwise_{judge}_{model}"),
    conda:
        "../../envs/mtbench.yaml"
    script:
        "../scripts/mtbench_pairwise.py"
