# JGLUE (and any lm-eval task) through lm-eval, with jaflow's jp-stable task family.


rule jglue:
    input:
        model=model_inputs,
        data=jglue_data_inputs,
    output:
        scores="results/jglue/{suite}/{model}/scores.csv",
        results="results/jglue/{suite}/{model}/results.json",
    params:
        model=hf_args,
        suite=jglue_suite,
        jglue=config["jglue"],
        seed=config["seed"],
    log:
        "logs/jglue/{suite}/{model}.log",
    script:
        "../scripts/jglue.py"
