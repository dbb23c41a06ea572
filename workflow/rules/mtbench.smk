# Japanese MT-Bench: answers per model, then an LLM judge, then per-category scores.


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
