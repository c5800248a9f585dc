"""Using a trained model outside the pipeline: `harfusion predict` on raw recordings, with the
model file on torch or its ONNX export on ONNX Runtime, and the `export` stage."""
