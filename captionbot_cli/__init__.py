"""The composition root: the `captionbot` command line and the process wiring (`runtime`).

The only package that may import every other one: the shared package (`captionbot`), the front ends
(`bot`), the captioner and training. Nothing imports it.
"""
