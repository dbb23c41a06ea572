# JGLUE (and any lm-eval task) through lm-eval, with jaflow's jp-stable task family
# (workflow/tasks/, generated from jaflow.evaluate.jglue.templates).


rule jglue_data:
    input:
        source=jglue_data_source,
        marc_ja=marc_ja_rebuilt,
    output:
        directory(L.jglue_data()),
    log:
        L.log("jglue", "data"),
    # downloads by URL can fail transiently
    retries: 2 if config["jglue"]["urls"] else 0
    conda:
        "../../envs/jglue.yaml"
    params:
        data_dir=config["jglue"]["data_dir"],
        urls=canonical(config["jglue"]["urls"]),
    script:
        "../scripts/jglue_data.py"


# One job per (suite, model). With jglue.cache_dir set, an evaluation whose model files, suite,
# data and settings match an earlier one (any experiment) is copied from the cache instead.
rule jglue:
    input:
        model=model_inputs,
        data=L.jglue_data(),
    output:
        scores=L.jglue("{suite}", "{model}", "scores.csv"),
        results=L.jglue("{suite}", "{model}", "results.json"),
    log:
        L.log("jglue", "{suite}/{model}"),
    conda:
        "../../envs/jglue.yaml"
    params:
        model=hf_args,
        suite=jglue_suite,
        settings=jglue_settings,
        harness=config["jglue"]["harness"],
        loglikelihood_batch_size=config["jglue"]["loglikelihood_batch_size"],
        seed=config["seed"],
    script:
        "../scripts/jglue.py"
