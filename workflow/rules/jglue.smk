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
    conda:
        "../../envs/jglue.yaml"
    script:
        "../scripts/jglue_data.py"


# One job per (suite, model). With jglue.cache_dir set, an evaluation whose model files, suite,
# data and settings match an earlier one (any experiment) is copied from the cache instead.
rule jglue:
    input:
        model=model_inputs,
        data="results/jglue/data",
    output:
        scores="results/jglue/{suite}/{model}/scores.csv",
        results="results/jglue/{suite}/{model}/results.json",
    params:
        model=hf_args,
        suite=jglue_suite,
        # only what the job reads: a change to jglue.runs must not rerun every evaluation
        settings=jglue_settings(),
        harness=config["jglue"]["harness"],
        loglikelihood_batch_size=config["jglue"]["loglikelihood_batch_size"],
        seed=config["seed"],
    log:
        "logs/jglue/{suite}/{model}.log",
    conda:
        "../../envs/jglue.yaml"
    script:
        "../scripts/jglue.py"
