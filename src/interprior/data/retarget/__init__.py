"""Retargeting human clips (SMPL-X, InterMimic files) to the Unitree G1: `interprior data retarget`.

`targets` turns a human clip into per-frame G1 targets (scaled about the object; planted feet held still; hands
put on the object's surface in the source's contact phases; a lifted object's height scaled), `ik` solves them
frame by frame with mink on the G1's MJCF, `checks` measures the result (foot sliding, hand gap, object floating,
joint ranges), `run` does a whole folder (`outdir`: its input and output folders), `robot` holds the G1's figures.
"""
