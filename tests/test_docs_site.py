"""The built documentation site, drawn by a real headless chromium, offline.

``make docs`` builds the site and then runs this module with ``DOCS_SITE`` set to it. The
site is served from 127.0.0.1 and every other host is unresolvable in the browser, so a page
that needs a CDN (fonts, Mermaid) fails here. The Configuration page's screenshot is kept
next to the site: ``build/docs/configuration.png`` (the whole page),
``configuration-top.png`` and ``configuration-diagram.png``.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    not os.environ.get("DOCS_SITE"),
    reason="checks the built site: run `make docs` (it sets DOCS_SITE=build/docs/site)",
)

#: Flags that work here as root, in a container without a session bus or a GPU.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Offline: nothing but the local server resolves.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
#: Material draws a Mermaid diagram into a *closed* shadow root; keep a reference to each
#: root so the test can look inside (this observes, it does not change the mode).
RECORD_SHADOW_ROOTS = """
const attach = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) {
  const root = attach.call(this, init);
  (window.__shadowRoots = window.__shadowRoots || []).push(root);
  return root;
};
"""
DIAGRAM_DRAWN = """
() => (window.__shadowRoots || []).some(
  (root) => root.querySelector("svg") && root.textContent.includes("max_waiting")
)
"""
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def site() -> Path:
    site = Path(os.environ["DOCS_SITE"]).resolve()
    assert (site / "configuration" / "index.html").is_file(), (
        f"{site} has no built Configuration page: run `make docs`"
    )
    return site


@pytest.fixture(scope="module")
def site_url(site: Path) -> Iterator[str]:
    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class Visit:
    """A browser tab, and what went wrong in it: script errors, requests to other hosts."""

    page: Any
    site_url: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def on_request(self, request: Any) -> None:
        if not request.url.startswith(self.site_url):
            self.foreign.append(request.url)

    def on_error(self, error: Any) -> None:
        self.errors.append(str(error))

    def assert_clean(self) -> None:
        assert not self.errors, f"script errors: {self.errors}"
        assert not self.foreign, f"the page asked for other hosts than the site: {self.foreign}"


@pytest.fixture
def visit(site_url: str, tmp_path: Path) -> Iterator[Visit]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: apt-get install -y chromium"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # a new, empty user data directory
            executable_path=chromium,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = context.new_page()
            visit = Visit(page, site_url)
            page.on("pageerror", visit.on_error)
            page.on("request", visit.on_request)
            page.add_init_script(RECORD_SHADOW_ROOTS)
            page.set_default_timeout(TIMEOUT_MS)
            yield visit
        finally:
            context.close()


def test_configuration_page_is_drawn(visit: Visit, site: Path) -> None:
    page = visit.page
    page.goto(f"{visit.site_url}configuration/", wait_until="load")

    # The navigation: every section of the site, the current page marked.
    nav = page.locator("nav.md-nav--primary")
    for title in ("Configuration", "How it works", "Coming from django-pg-real-pool 1.1.0"):
        assert nav.get_by_role("link", name=title, exact=True).first.is_visible(), title
    active = nav.locator(".md-nav__link--active").first.inner_text()
    assert "Configuration" in active
    page.screenshot(path=str(site.parent / "configuration-top.png"))  # before any scrolling

    # The options tables of both engines, drawn with their rows.
    for first_cell, row in (("max_lifetime", "3600.0"), ("POOL_SIZE", "10")):
        table = page.locator("article table", has_text=first_cell).first
        assert table.is_visible(), first_cell
        assert table.locator("tr", has_text=row).count() >= 1
        box = table.bounding_box()
        assert box is not None, first_cell
        assert box["height"] > 100, (first_cell, box)

    # A Python sample with syntax highlighting: Pygments' spans, coloured unlike plain text.
    code = page.locator("div.language-python code").first
    assert code.is_visible()
    assert code.locator("span.s2, span.s1").count() > 0
    colours = code.evaluate(
        """(code) => {
            const string = code.querySelector("span.s2, span.s1");
            const name = code.querySelector("span.n");
            return [getComputedStyle(string).color, getComputedStyle(name).color];
        }"""
    )
    assert colours[0] != colours[1], colours

    # The Mermaid diagram: an SVG drawn by the site's own copy of mermaid.js.
    page.wait_for_function(DIAGRAM_DRAWN, timeout=TIMEOUT_MS)
    diagram = page.locator("div.mermaid").first
    diagram.scroll_into_view_if_needed()
    box = diagram.bounding_box()
    assert box is not None
    assert box["height"] > 200, box
    assert box["width"] > 200, box

    # The artefacts: the whole page and the diagram (the first screen is taken above).
    page.screenshot(path=str(site.parent / "configuration.png"), full_page=True)
    diagram.screenshot(path=str(site.parent / "configuration-diagram.png"))
    visit.assert_clean()


def _pages_with_diagrams() -> list[str]:
    docs = Path(__file__).parent.parent / "docs"
    return sorted(page.stem for page in docs.glob("*.md") if "```mermaid" in page.read_text())


@pytest.mark.parametrize("page_name", _pages_with_diagrams())
def test_every_diagram_is_drawn(visit: Visit, page_name: str) -> None:
    """Each Mermaid block of the page becomes an SVG, with no script error."""
    page = visit.page
    page.goto(f"{visit.site_url}{page_name}/", wait_until="load")
    expected = page.locator(".mermaid").count()
    assert expected > 0
    page.wait_for_function(
        """(expected) => (window.__shadowRoots || []).filter(
            (root) => root.querySelector("svg g")
        ).length >= expected""",
        arg=expected,
    )
    visit.assert_clean()


def test_search_finds_an_option(visit: Visit) -> None:
    page = visit.page
    page.goto(visit.site_url, wait_until="load")
    search = page.locator("input.md-search__input")
    search.click()
    search.press_sequentially("max_waiting")
    results = page.locator(".md-search-result__item")
    results.first.wait_for(state="visible")
    assert "max_waiting" in page.locator(".md-search-result").inner_text()
    visit.assert_clean()
