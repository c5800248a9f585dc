"""The one exception type stages turn into a clear message and a non-zero exit."""


class HarfusionError(Exception):
    """Bad input or params: the message names the file and line, or the key, at fault."""
