# JGLUE (and any lm-eval task) through lm-eval, with jaflow's jp-stable task family
# (workflow/tasks/, generated from jaflow.evaluate.jglue.templates).


rule jglue_data:
    input:
        source=jglue_data_source,
    output:
        directory("results/jglue/data"),
    params:
        data_dir=config["jglue"]["data_dir"],
        urls=config["jglue"]["urls"],
    log:
        "logs/jglue/data.log",
    script:
        "../scripts/jglue_data.py"


# Between-workflow cache (`snakemake --cache jglue`, SNAKEMAKE_OUTPUT_CACHE set): the key hashes
# the model files, suite, settings and this rule's code, so a second experiment evaluating the
# same base model on the same suite reuses the result instead of rerunning lm-eval.
rule jglue:
    input:
        model=model_inputs,
        data="results/jglue/data",
    output:
        scores="results/jglue/{suite}/{model}/scores.csv",
        results="results/jglue/{suite}/{model}/results.json",
    cache: "omit-software"
    params:
        model=hf_args,
        suite=jglue_suite,
        jglue=config["jglue"],
        seed=config["seed"],
    log:
        "logs/jglue/{suite}/{model}.log",
    script:
        "../scripts/jglue.py"
