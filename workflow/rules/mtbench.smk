# Japanese MT-Bench: answers per model, then an LLM judge, then per-category scores.


rule mtbench_answer:
    input:
        model=model_inputs,
        questions=mtbench_questions,
    output:
        "results/mtbench/{bench}/model_answer/{model}.jsonl",
    params:
        model=hf_args,
        chat_format=chat_format,
        sources=mtbench_sources,
        mtbench=mtbench_answer_params,
        seed=config["seed"],
    log:
        "logs/mtbench/{bench}/answer_{model}.log",
    conda:
        "../../envs/mtbench.yaml"
    script:
        "../scripts/mtbench_answer.py"


rule mtbench_judge:
    input:
        answers="results/mtbench/{bench}/model_answer/{model}.jsonl",
        questions=mtbench_questions,
        judge_files=mtbench_judge_files,
        judge_model=mtbench_judge_inputs,
    output:
        judgments="results/mtbench/{bench}/model_judgment/{judge}/{model}.jsonl",
        scores="results/mtbench/{bench}/scores/{judge}/{model}.csv",
    params:
        mtbench=mtbench_judge_params,
        sources=mtbench_sources,
        judge_hf=mtbench_judge_hf_args,
        cache="results/mtbench/{bench}/judge_cache/{judge}.jsonl",
    # network calls (hub downloads, judge APIs) can fail transiently; a rerun resumes
    retries: 2
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
        judge_files=mtbench_judge_files,
        judge_model=mtbench_judge_inputs,
    output:
        judgments="results/mtbench/{bench}/pairwise/{judge}/{model}.jsonl",
        scores="results/mtbench/{bench}/pairwise/{judge}/{model}.csv",
    params:
        mtbench=mtbench_judge_params,
        sources=mtbench_sources,
        baseline=lambda wildcards: config["mtbench"]["pairwise"]["baseline"],
        judge_hf=mtbench_judge_hf_args,
        cache="results/mtbench/{bench}/judge_cache/{judge}.jsonl",
    log:
        "logs/mtbench/{bench}/pairwise_{judge}_{model}.log",
    conda:
        "../../envs/mtbench.yaml"
    script:
        "../scripts/mtbench_pairwise.py"
