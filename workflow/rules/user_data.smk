# Files the user supplies under data/ (datasets that are not on the hub, upstream benchmark
# files). Nothing can make them, so a missing one is a job that stops at once with what to
# do: a dry run lists it, and a real run fails on it early (it is a local job, no queue).


rule user_data:
    output:
        "data/{path}",
    log:
        L.log("user_data", "{path}"),
    localrule: True
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/user_data.py"
