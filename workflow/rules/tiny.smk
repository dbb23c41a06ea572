# The tiny offline world: small datasets in the real schemas, a tokenizer trained on their
# text, and tiny models of the seeds' architectures. Nothing here reaches the network.


rule tiny_instructions:
    output:
        L.tiny("instructions"),
    log:
        L.log("tiny", "instructions"),
    conda:
        "../../envs/tiny.yaml"
    params:
        rows=config["tiny"]["instruction_rows"],
        seed=config["seed"],
    script:
        "../scripts/tiny_instructions.py"


rule tiny_jglue:
    output:
        jglue=directory(L.tiny("jglue")),
        marc_train=L.tiny("marc_train"),
    log:
        L.log("tiny", "jglue"),
    conda:
        "../../envs/tiny.yaml"
    params:
        rows=config["tiny"]["jglue_rows"],
        marc_rows=config["tiny"]["marc_rows"],
        seed=config["seed"],
    script:
        "../scripts/tiny_jglue.py"


rule tiny_mtbench:
    output:
        questions=L.tiny("mtbench_questions"),
    log:
        L.log("tiny", "mtbench"),
    conda:
        "../../envs/tiny.yaml"
    params:
        seed=config["seed"],
    script:
        "../scripts/tiny_mtbench.py"


rule tiny_judge_data:
    input:
        questions=rules.tiny_mtbench.output.questions,
    output:
        L.tiny("judge_train"),
    log:
        L.log("tiny", "judge_data"),
    conda:
        "../../envs/tiny.yaml"
    params:
        rows=config["tiny"]["judge_rows"],
        seed=config["seed"],
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
        directory(L.tiny("tokenizer")),
    log:
        L.log("tiny", "tokenizer"),
    conda:
        "../../envs/tiny.yaml"
    params:
        vocab_size=config["tiny"]["vocab_size"],
    script:
        "../scripts/tiny_tokenizer.py"


rule tiny_model:
    input:
        tokenizer=rules.tiny_tokenizer.output[0],
    output:
        directory(L.tiny_model("{arch}")),
    log:
        L.log("tiny", "model_{arch}"),
    wildcard_constraints:
        arch="llama|gpt_neox|mistral",
    conda:
        "../../envs/tiny.yaml"
    params:
        tiny=canonical(config["tiny"]),
        seed=config["seed"],
    script:
        "../scripts/tiny_model.py"
