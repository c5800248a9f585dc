"""Multimodal human-activity recognition on PAMAP2-format wearable data."""
