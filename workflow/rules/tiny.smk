# The tiny offline world: small datasets in the real schemas, a tokenizer trained on their
# text, and tiny models of the seeds' architectures. Nothing here reaches the network.


rule tiny_instructions:
    output:
        "results/tiny/data/instructions.jsonl",
    params:
        rows=config["tiny"]["instruction_rows"],
        seed=config["seed"],
    log:
        "logs/tiny/instructions.log",
    conda:
        "../../envs/tiny.yaml"
    script:
        "../scripts/tiny_instructions.py"


rule tiny_jglue:
    output:
        jglue=directory("results/tiny/jglue"),
        marc_train="results/tiny/data/marc_train.jsonl",
    params:
        rows=config["tiny"]["jglue_rows"],
        marc_rows=config["tiny"]["marc_rows"],
        seed=config["seed"],
    log:
        "logs/tiny/jglue.log",
    conda:
        "../../envs/tiny.yaml"
    script:
        "../scripts/tiny_jglue.py"


rule tiny_mtbench:
    output:
        questions="results/tiny/mtbench/question.jsonl",
    params:
        seed=config["seed"],
    log:
        "logs/tiny/mtbench.log",
    conda:
        "../../envs/tiny.yaml"
    script:
        "../scripts/tiny_mtbench.py"


rule tiny_judge_data:
    input:
        questions=rules.tiny_mtbench.output.questions,
    output:
        "results/tiny/data/judge_train.jsonl",
    params:
        rows=config["tiny"]["judge_rows"],
        seed=config["seed"],
    log:
        "logs/tiny/judge_data.log",
    conda:
        "../../envs/tiny.yaml"
    script:
        "../scripts/tiny_judge_data.py"


rule tiny_tokenizer:
    input:
        instructions=rules.tiny_instructions.output[0],
        jglue=rules.tiny_jglue.output.jglue,
        marc_train=rules.tiny_jglue.output.marc_train,
        mtbench=rules.tiny_mtbench.output.questions,
        judge=rules.tiny_judge_data.output[0],
    output:
        directory("results/tiny/tokenizer"),
    params:
        vocab_size=config["tiny"]["vocab_size"],
    log:
        "logs/tiny/tokenizer.log",
    conda:
        "../../envs/tiny.yaml"
    script:
        "../scripts/tiny_tokenizer.py"


rule tiny_model:
    input:
        tokenizer=rules.tiny_tokenizer.output[0],
    output:
        directory("results/tiny/models/{arch}"),
    wildcard_constraints:
        arch="llama|gpt_neox|mistral",
    params:
        tiny=config["tiny"],
        seed=config["seed"],
    log:
        "logs/tiny/model_{arch}.log",
    conda:
        "../../envs/tiny.yaml"
    script:
        "../scripts/tiny_model.py"
