"""The HTML page that `dvc plots show` and `dvc plots diff` fill with their plots, carrying Vega,
Vega-Lite and vega-embed inline: DVC's own page loads them from a CDN and draws nothing offline.

`.dvc/config` names the page as `plots.html_template`; the `plots_template` stage writes it from
the bundle the vl-convert-python package builds, so no third-party JavaScript is committed.
"""

from __future__ import annotations

from pathlib import Path

from harfusion.atomic import atomic_path
from harfusion.errors import HarfusionError

VEGA_LITE = "5.21"  # DVC's templates declare Vega-Lite 5 (`$schema`); the newest 5 bundled
GLOBALS = "window.vegaEmbed = vegaEmbed; window.vegaLite = vegaLite; window.vega = vega;"
# DVC fills the three placeholders; `{scripts}` is left out on purpose: it is where DVC puts
# its CDN <script> tags.
HEAD = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
{refresh_tag}
<title>DVC plots</title>
<style>
body { font-family: sans-serif; margin: 1em; }
body > div { display: inline-block; vertical-align: top; margin: 0.5em; }
</style>
<script>
"""
TAIL = """
</script>
</head>
<body>
{plot_divs}
</body>
</html>
"""


def page() -> str:
    """The template: vegaEmbed, vegaLite and vega as globals, as DVC's plot divs expect them."""
    import vl_convert  # builds the bundle with its own JavaScript runtime: seconds

    bundle = vl_convert.javascript_bundle(GLOBALS, vl_version=VEGA_LITE)
    if "</script" in bundle.lower():  # would end the inline script early
        raise HarfusionError("vl-convert's bundle contains </script>; it cannot be inlined")
    return HEAD + bundle + TAIL


def write_page(path: Path) -> int:
    """Write the template; return its size in bytes."""
    data = page().encode()  # DVC reads it as UTF-8, whatever the locale
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return len(data)
