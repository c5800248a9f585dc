"""The one exception type stages turn into a clear message and a non-zero exit."""

import re


class HarfusionError(Exception):
    """Bad input or params: the message names the file and line, or the key, at fault."""


# Torch's refusal text advises loading with `weights_only=False` "if you trust the source",
# i.e. running the file's code; no sentence of ours repeats it.
_ADVICE = re.compile(r"weights_only|trust|will likely succeed|safe_globals", re.IGNORECASE)


def _sentences(text: str) -> list[str]:
    """Torch's message cut into plain sentences (no terminal escapes, no line breaks)."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return [s.strip() for s in re.split(r"(?<=\.)\s+|\n+", plain) if s.strip()]


def refused_torch_file(path: object, what: str, exc: BaseException) -> HarfusionError:
    """Why `torch.load(..., weights_only=True)` could not read `path`, in one line.

    Torch's refusal advises loading again with `weights_only=False`, which would run whatever
    the file's pickled objects say; we never load those, so the advice is left out, in every
    form torch words it (tests/test_safety.py tries the kinds of payload it words differently).
    """
    text = str(exc)
    refused = re.search(r"WeightsUnpickler error:\s*(.*)", text, re.DOTALL)
    if refused or "Weights only load failed" in text:
        found = [s for s in _sentences(refused[1] if refused else "") if not _ADVICE.search(s)]
        why = f" ({found[0].rstrip('.')})" if found else ""
        return HarfusionError(
            f"{path}: not {what}: it holds pickled Python objects{why}, which are never loaded "
            "since loading them can run code"
        )
    found = [s for s in _sentences(text) if not _ADVICE.search(s)]
    first = found[0][:200] if found else ""
    return HarfusionError(f"{path}: not {what} ({type(exc).__name__}: {first})")
