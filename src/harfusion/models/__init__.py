"""The networks: per-modality encoders, early / late / hybrid fusion, modality masking,
training-time augmentation, and the model file that carries weights with their params."""
