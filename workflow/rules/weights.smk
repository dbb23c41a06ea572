# A base model whose config gives the card's published checksums (models.<base>.md5 / sha256) is
# checked once, before any job loads it: its check is one of the base's model_inputs.


rule verify_weights:
    input:
        weights_local_dir,
    output:
        L.weights_check("{base}"),
    log:
        L.log("weights", "{base}"),
    # no retries: a digest that differs differs again (and a hub download can be gigabytes)
    conda:
        "../../envs/train.yaml"
    params:
        spec=params(lambda w: TARGETS.weights_spec(w.base)),
    script:
        "../scripts/verify_weights.py"
