"""The one exception type stages turn into a clear message and a non-zero exit."""

import re


class HarfusionError(Exception):
    """Bad input or params: the message names the file and line, or the key, at fault."""


def refused_torch_file(path: object, what: str, exc: BaseException) -> HarfusionError:
    """Why `torch.load(..., weights_only=True)` could not read `path`, in one line.

    Torch's refusal advises loading again with `weights_only=False`, which would run whatever
    the file's pickled objects say; we never load those, so the advice is left out.
    """
    text = str(exc)
    refused = re.search(r"WeightsUnpickler error: (.*?)(?:\. |\n|$)", text)
    if refused:
        return HarfusionError(
            f"{path}: not {what}: it holds pickled Python objects ({refused[1]}), which are "
            "never loaded since loading them can run code"
        )
    first = text.strip().splitlines()[0] if text.strip() else ""
    return HarfusionError(f"{path}: not {what} ({type(exc).__name__}: {first})")
