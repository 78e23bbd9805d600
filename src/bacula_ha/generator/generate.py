"""The generator as a library call: site file in, configuration text out."""

from __future__ import annotations

from pathlib import Path

from .plan import build
from .render import render
from .schema import load_site


def generate_text(site: str | Path, fmt: str) -> str:
    """Render the site at `site` in `fmt` (crm, pcs, cib, dot, svg); GeneratorError if invalid."""
    parsed = load_site(site)
    return render(build(parsed), fmt, parsed)
