"""Evaluation stages: JGLUE through lm-eval (`jaflow.evaluate.jglue`)."""
