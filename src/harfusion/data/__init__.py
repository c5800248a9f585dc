"""The data layer: the PAMAP2 format, reading and synthesizing raw recordings, and the
preprocess → split → tensorize stages that turn them into windows, datasets and loaders."""
