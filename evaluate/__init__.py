"""Evaluation of vs_colorgan: metrics (:mod:`evaluate.metrics`) and the ``colorgan-eval`` command
(:mod:`evaluate.cli`), which colourizes colour footage made gray through VapourSynth and scores it."""
