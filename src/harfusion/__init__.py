"""Multimodal human-activity recognition on wearable-sensor data sets, each a description
(PAMAP2 and MHEALTH shipped, your own in YAML)."""
