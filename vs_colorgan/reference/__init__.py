"""Colour from references: hand-coloured keyframes carried through their shots.

* :mod:`~vs_colorgan.reference.references` - reading and checking ``colorize(references=...)`` (a folder of
  ``ref_NNNNNN.png``, or ``{frame: image, array or clip}``);
* :mod:`~vs_colorgan.reference.scribble` - strokes on a transparent layer spread along the luma (Levin et al. 2004);
* :mod:`~vs_colorgan.reference.flow` - dense flow, warping and the edge-aware hole fill one step is made of;
* :mod:`~vs_colorgan.reference.propagate` - the keyframe mode of ``colorize``: key colour, anchors, blending;
* :mod:`~vs_colorgan.reference.keyframes` - ``colorgan-keyframes``, the frames to colour by hand.

The filter (:mod:`vs_colorgan.filter`) switches to this mode when ``references`` is given; everything here
builds on the filter's core modules (``temporal``, ``pipeline``, ``upsample``, ``color``) and on none of the
film-rendering tools (:mod:`vs_colorgan.render`).
"""
