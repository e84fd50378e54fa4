"""Renderers: ``render(...) -> str`` for documents and reports (no terminal code)."""
