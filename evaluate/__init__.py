"""Evaluation of vs_colorgan: metrics (:mod:`vs_colorgan.evaluate.metrics`) and the ``colorgan-eval`` command
(:mod:`vs_colorgan.evaluate.cli`), which colourizes colour footage made gray through VapourSynth and scores it."""
