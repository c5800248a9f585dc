"""Stage export: the model file as ONNX with its model card, parity-checked against torch on
the test windows → `exports/`."""

from harfusion import layout
from harfusion.cli import run_stage
from harfusion.inference.export import export
from harfusion.params import Params
from harfusion.threads import configure_threads


def main(params: Params) -> None:
    configure_threads(params)
    parity = export(layout.MODELS / layout.MODEL_FILE, layout.TENSORS, layout.EXPORTS)
    print(
        f"export: {layout.EXPORTS / layout.ONNX_MODEL}; on {parity['windows']} test windows the "
        f"largest probability difference from torch is {parity['max_abs_difference']:.2g}"
    )


if __name__ == "__main__":
    run_stage(main)
