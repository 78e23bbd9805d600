"""The generator as a library call: site file in, configuration text out."""

from __future__ import annotations

from pathlib import Path

from ..site.parse import load_site
from .plan import build
from .render import render


def generate_text(site: str | Path, fmt: str) -> str:
    """Render the site at `site` in `fmt` (crm, pcs, cib, dot, svg); SiteError if it is invalid,
    GeneratorError if it cannot be rendered."""
    parsed = load_site(site)
    return render(build(parsed), fmt, parsed)
