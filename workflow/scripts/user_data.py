"""Stop with instructions: a file the user supplies under data/ is missing."""

from jaflow.experiments import missing_user_file
from jaflow.logs import log_to

with log_to(snakemake.log[0]):  # noqa: F821 - injected by Snakemake
    missing_user_file(snakemake.output[0])  # noqa: F821
