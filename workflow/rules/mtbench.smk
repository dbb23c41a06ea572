# Japanese MT-Bench: answers per model, then an LLM judge, then per-category scores.
# Answer jobs see only what changes answers; judge prompts, reference answers and judge settings
# reach the judge jobs alone, so a judge-side edit never regenerates answers.


rule mtbench_answer:
    input:
        model=model_inputs,
        questions=mtbench_questions,
    output:
        L.mtbench_answers("{bench}", "{model}"),
    log:
        L.log("mtbench", "{bench}/answer_{model}"),
    conda:
        "../../envs/mtbench.yaml"
    params:
        model=hf_args,
        chat_format=chat_format,
        questions=config["mtbench"]["questions"],
        mtbench=mtbench_answer_settings,
        seed=config["seed"],
    script:
        "../scripts/mtbench_answer.py"


# No Snakemake `retries:` on the judge rules: refusals (400/401/403/404) are deterministic, and
# transient network faults are retried inside the job, which resumes from its cache when rerun.
rule mtbench_judge:
    input:
        answers=L.mtbench_answers("{bench}", "{model}"),
        questions=mtbench_questions,
        judge_files=mtbench_judge_files,
        judge_model=mtbench_judge_inputs,
    output:
        judgments=L.mtbench_judgments("{bench}", "{judge}", "{model}"),
        scores=L.mtbench_scores("{bench}", "{judge}", "{model}"),
        usage=L.mtbench("{bench}", "scores", "{judge}", "{model}.usage.json"),
    log:
        L.log("mtbench", "{bench}/judge_{judge}_{model}"),
    conda:
        "../../envs/mtbench.yaml"
    params:
        mtbench=mtbench_judge_settings,
        questions=config["mtbench"]["questions"],
        judge_hf=mtbench_judge_hf_args,
        cache=L.judge_cache("{judge}"),
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
    log:
        L.log("mtbench", "{bench}/pairwise_{judge}_{model}"),
    conda:
        "../../envs/mtbench.yaml"
    params:
        mtbench=mtbench_judge_settings,
        questions=config["mtbench"]["questions"],
        baseline=config["mtbench"]["pairwise"]
        and config["mtbench"]["pairwise"]["baseline"],
        judge_hf=mtbench_judge_hf_args,
        cache=L.judge_cache("{judge}"),
    script:
        "../scripts/mtbench_pairwise.py"
