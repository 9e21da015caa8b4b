"""Explorers layer: ipywidgets controls wired to figure functions, with a static fallback.

base: the "widget with a static fallback" pattern and the shared control helpers. One
module per topic: scaling, costs, compression, hardware, scaleout.
"""
