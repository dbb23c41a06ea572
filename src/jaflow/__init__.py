"""jaflow: train-then-evaluate experiments on Japanese LLMs, as a Snakemake workflow."""

__version__ = "0.1.0"
