"""JSON responses that never fail on what a client sent."""

from __future__ import annotations

from rest_framework import renderers


class JSONRenderer(renderers.JSONRenderer):
    """DRF's JSON renderer (UTF-8, not ASCII-escaped), except that a response echoing text
    that is not Unicode — a lone surrogate a client sent as "\\ud800", e.g. a lookup key —
    is written with ASCII escapes (valid JSON) instead of failing to encode (a 500)."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return _ASCII.render(data, accepted_media_type, renderer_context)


class _AsciiJSONRenderer(renderers.JSONRenderer):
    ensure_ascii = True


_ASCII = _AsciiJSONRenderer()
