"""Settings that survive page changes and travel in the URL: widget keys bound to query parameters.

A page calls :func:`bind` just before it creates a widget, with the widget's key, the URL
parameter's name and a default, and then creates the widget with that key and *no* default of
its own (no ``index=``/``value=``/``default=``; the value comes from session state)::

    ui.bind("nb_movie", "item", default=50, options=ids, cast=int)
    st.selectbox("Movie", ids, key="nb_movie")

The value is, in this order:

1. the widget's live value (the session already shows the page: the user's last choice);
2. the URL's parameter (a link opened in a fresh browser, ``/neighbours?item=50``);
3. the value this session last had under that parameter on any page (``item`` chosen on Poster
   neighbours is the movie the Embedding map highlights: page changes keep settings);
4. the default.

A value that is not among `options` (another dataset, a representation not extracted here)
falls back to the default instead of failing. The chosen value is written back to the URL at
once (only when it changed), so the address bar always reproduces the view.

Streamlit forgets a widget's value when a run does not draw it (every page change); the
session-wide copy kept here under ``_url_keep`` is what brings it back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import streamlit as st

log = logging.getLogger(__name__)

KEEP = "_url_keep"  # session state: URL parameter -> last value, across pages
SEPARATOR = ","


def _truthy(text: str) -> bool:
    return str(text).strip().lower() in ("1", "true", "yes", "on")


def _caster(default: Any, cast: Callable | None) -> Callable[[str], Any]:
    if cast is not None:
        return cast
    if isinstance(default, bool):
        return _truthy
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    return str


def _format_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return str(value)


def _tokens_of(tokens: Mapping | None) -> tuple[dict, dict]:
    forward = dict(tokens or {})
    return forward, {str(v): k for k, v in forward.items()}


def encode(value: Any, *, multi: bool = False, tokens: Mapping | None = None) -> str:
    """The URL text of a widget value (labels through `tokens`, lists comma-joined)."""
    forward, _ = _tokens_of(tokens)

    def one(v):
        return _format_scalar(forward.get(v, v))

    if multi:
        return SEPARATOR.join(one(v) for v in (value or []))
    return one(value)


def decode(text: str, *, default: Any = None, multi: bool = False, tokens: Mapping | None = None, cast=None) -> Any:
    """The widget value of a URL text; raises ValueError when it cannot be read."""
    _, backward = _tokens_of(tokens)
    element_default = default[0] if multi and default else default
    parse = _caster(element_default, cast)

    def one(t: str):
        t = t.strip()
        if t in backward:
            return backward[t]
        return parse(t)

    if multi:
        return [one(t) for t in str(text).split(SEPARATOR) if t.strip()]
    return one(str(text))


def _valid(value: Any, options: Iterable | None, multi: bool) -> Any:
    """`value` restricted to `options` (None when a single value is not allowed)."""
    if options is None:
        return value
    allowed = list(options)
    if multi:
        kept = [v for v in (value or []) if v in allowed]
        return kept if kept or not value else None
    return value if value in allowed else None


def kept() -> dict:
    """This session's settings by URL parameter (read-only view for pages and tests)."""
    return dict(st.session_state.get(KEEP, {}))


def bind(
    key: str,
    param: str,
    default: Any,
    *,
    options: Iterable | None = None,
    tokens: Mapping | None = None,
    multi: bool = False,
    cast: Callable[[str], Any] | None = None,
    url: bool = True,
    url_default: bool = True,
) -> Any:
    """Give widget `key` its value (live, URL, kept, default: see the module docstring) and mirror
    it to the URL parameter `param`. Call it right before the widget; returns the value.

    options: the widget's allowed values (a value outside them falls back to the default);
    tokens: widget value -> URL text, e.g. a representation's label -> its spec;
    multi: the value is a list (multiselect), written comma-separated;
    cast: how to read a URL text (default: the default's type);
    url: False keeps the setting across pages without writing it to the URL;
    url_default: False leaves the parameter out of the URL while the value is the default.
    """
    state = st.session_state
    keep = state.setdefault(KEEP, {})
    options = list(options) if options is not None else None
    value, source = None, "default"
    if key in state:
        value, source = state[key], "live"
    elif url and param in st.query_params:
        try:
            value, source = (
                decode(st.query_params[param], default=default, multi=multi, tokens=tokens, cast=cast),
                "url",
            )
        except (TypeError, ValueError):
            log.info("URL parameter %s=%r is not readable; using the default", param, st.query_params[param])
    elif param in keep:
        value, source = keep[param], "kept"
    checked = _valid(value, options, multi) if source != "default" else None
    if checked is None:
        checked = _valid(default, options, multi)
        if checked is None:  # the default itself is not offered: the widget's first option
            checked = ([] if multi else (options[0] if options else default)) if options is not None else default
    if source != "live" or checked != value:
        state[key] = checked
    keep[param] = checked
    if url:
        text = encode(checked, multi=multi, tokens=tokens)
        if checked is None or (isinstance(checked, list) and not checked) or (not url_default and checked == default):
            if param in st.query_params:
                del st.query_params[param]
        elif st.query_params.get(param) != text:
            st.query_params[param] = text
    return checked


def forget(param: str) -> None:
    """Drop a parameter from the URL and from the kept settings (e.g. a selection that ended)."""
    st.session_state.get(KEEP, {}).pop(param, None)
    if param in st.query_params:
        del st.query_params[param]


def current_url_query() -> str:
    """The query string the address bar shows now ('dataset=ml-100k&item=50')."""
    from urllib.parse import urlencode

    return urlencode(st.query_params.to_dict())
