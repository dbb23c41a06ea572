# The tiny offline world: a tokenizer, tiny models and small datasets in the real schemas.


rule tiny_tokenizer:
    output:
        directory("results/tiny/tokenizer"),
    params:
        tiny=config["tiny"],
        seed=config["seed"],
    log:
        "logs/tiny/tokenizer.log",
    script:
        "../scripts/tiny_tokenizer.py"


rule tiny_model:
    input:
        tokenizer="results/tiny/tokenizer",
    output:
        directory("results/tiny/models/{arch}"),
    wildcard_constraints:
        arch="llama|gpt_neox|mistral",
    params:
        tiny=config["tiny"],
        seed=config["seed"],
    log:
        "logs/tiny/model_{arch}.log",
    script:
        "../scripts/tiny_model.py"


rule tiny_data:
    output:
        instructions="results/tiny/data/instructions.jsonl",
        marc_train="results/tiny/data/marc_train.jsonl",
        jglue=directory("results/tiny/jglue"),
        mtbench_questions="results/tiny/mtbench/question.jsonl",
    params:
        tiny=config["tiny"],
        seed=config["seed"],
    log:
        "logs/tiny/data.log",
    script:
        "../scripts/tiny_data.py"
