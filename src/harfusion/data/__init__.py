"""The data layer: dataset descriptions (PAMAP2 and MHEALTH shipped, a user's own in YAML),
reading recordings as they say, the synthetic PAMAP2 set, and the preprocess → split →
tensorize stages that turn recordings into windows, datasets and loaders."""
