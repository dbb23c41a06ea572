# MARC-ja rebuilt from the Amazon reviews file the user supplies (jglue.marc_ja), by JGLUE's
# published recipe (jaflow.data.marc_ja). Its train/valid files replace jglue.data_dir's
# marc_ja-v1.1/ in rule jglue_data.


def marc_ja_reviews(wildcards):
    return config["jglue"]["marc_ja"]["reviews"]


def marc_ja_rebuilt(wildcards):
    """The rebuilt MARC-ja directory when jglue.marc_ja is set, else nothing."""
    return f"{L.root}/jglue/marc_ja-v1.1" if config["jglue"]["marc_ja"] else []


rule marc_ja:
    input:
        reviews=marc_ja_reviews,
    output:
        directory(f"{L.root}/jglue/marc_ja-v1.1"),
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
