"""Headless Chromium with the network cut, to check that pages draw offline: the DOM after the
page's scripts ran, and how many Vega views they drew."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Any request goes to a proxy nobody listens on: a page that needs the network draws nothing.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--virtual-time-budget=20000",  # let the scripts run to the end
]
NETWORK = re.compile(r"""^(?:[a-z][a-z0-9+.-]*:)?//""", re.IGNORECASE)


def browser() -> str:
    """The Chromium on PATH; the test is skipped, saying why, where there is none."""
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        pytest.skip("no headless Chromium on PATH (Debian: apt-get install chromium)")
    return found


def dump_dom(page: Path) -> str:
    """The page's DOM once its scripts ran, offline."""
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [browser(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def drawn_vega_views(dom: str) -> int:
    """Vega views drawn: vega-embed puts one `marks` SVG or canvas into each plot's div."""
    return len(re.findall(r"<(?:svg|canvas)\b[^>]*\bclass=\"marks\"", dom))


def vega_plots(html: str) -> int:
    """Vega plots on a page as DVC writes it: one `vegaEmbed(...)` call per plot."""
    return len(re.findall(r"vegaEmbed\('#", html))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "data", "poster", "srcset"} and value:
                self.found.append(value)


def network_references(html: str) -> list[str]:
    """What the page would load from the network: links and sources with a scheme or `//`
    (a `data:` URI and a relative path stay), and CSS imports."""
    links = _Links()
    links.feed(html)
    loads = [value for value in links.found if NETWORK.match(value.strip())]
    return loads + re.findall(r"@import\s+url\(\s*['\"]?(?:https?:)?//[^)]*\)", html)
