"""MkDocs hook: serve Mermaid from the site itself, never from a CDN.

Material loads mermaid.js from unpkg unless the page already has it. ``make docs`` fetches the
npm package ``mermaid`` into ``build/docs/mermaid/`` (the minified library is not committed);
this hook copies it into the built site, where ``extra_javascript`` in mkdocs.yml loads it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

MERMAID = Path("build/docs/mermaid/mermaid.min.js")
TARGET = "javascripts/mermaid.min.js"


def _source(config: Any) -> Path:
    return Path(config.config_file_path).parent / MERMAID


def on_config(config: Any) -> Any:
    source = _source(config)
    if not source.is_file():
        raise PluginError(
            f"{source} is missing: the site serves Mermaid itself instead of loading it from a "
            "CDN. Run `make docs` (or `make docs-serve`), which fetches it with "
            "`npm pack mermaid`."
        )
    return config


def on_post_build(config: Any) -> None:
    target = Path(config.site_dir) / TARGET
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_source(config), target)
