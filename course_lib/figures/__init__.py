"""Figures layer: one function per figure, inputs and an Axes in, the Axes out.

base: the course style (colours, new_figure, show, log axes). One module per topic:
training, inference, scaling, costs, compression, hardware, scaleout, serving_load
(notebook 09). Every figure function takes its data and an Axes, draws, sets a title
computed from the data and returns the Axes. Imports matplotlib, the arithmetic layer and
torch-layer results; never ipywidgets.
"""
