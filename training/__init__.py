"""Training for vs_colorgan: the three set-ups of the design paper (section 3), data gathering, checkpoints.

Entry points: ``colorgan-train`` (:mod:`vs_colorgan.training.cli`), ``colorgan-gather`` (:mod:`vs_colorgan.training.gather`)
and ``colorgan-adapt`` (:mod:`vs_colorgan.training.adapt`: fine-tuning on a film's painted keyframes).
Networks come from :mod:`vs_colorgan.networks`; generator files from :mod:`vs_colorgan.model_io`.
"""
