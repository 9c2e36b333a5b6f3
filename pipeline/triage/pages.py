"""Minimal HTML error pages of the triage server (every value escaped; no scripts). The queue's
pages are in queue.py."""

from __future__ import annotations

import html

_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
    "td{border:1px solid #ccc;padding:.2em .5em;vertical-align:top}form{display:inline-block;margin:.3em}"
)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )


def message(status: int, text: str) -> str:
    return _page(f"{status}", f"<h1>{status}</h1><p>{html.escape(text)}</p>")
