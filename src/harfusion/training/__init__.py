"""Fitting a fusion model with Lightning (the `train` stage): the LightningModule, the data
module, and the fit with its resumable checkpoints."""
