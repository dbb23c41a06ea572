"""Training stage: recipes (qlora, lora, full, lisa) on the Hugging Face Trainer, checkpoint
resume, and best-checkpoint selection.

The pieces are small builders (`builders`), data preparation with prompt masking (`data`),
the LISA layer sampler (`lisa`), and the rules' entry points `recipes.train` and
`select.select_checkpoint`.
"""
