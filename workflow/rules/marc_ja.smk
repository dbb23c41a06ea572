# MARC-ja rebuilt from the Amazon reviews file the user supplies (jglue.marc_ja), by JGLUE's
# published recipe (jaflow.data.marc_ja). Its train/valid files replace jglue.data_dir's
# marc_ja-v1.1/ in rule jglue_data.


rule marc_ja:
    input:
        reviews=marc_ja_reviews,
    output:
        directory(L.marc_ja()),
    log:
        L.log("jglue", "marc_ja"),
    # the two lists are downloaded by URL (transient failures retry)
    retries: 2
    conda:
        "../../envs/jglue.yaml"
    params:
        spec=canonical(config["jglue"]["marc_ja"]),
    script:
        "../scripts/marc_ja.py"
