"""A poster panel that follows the mouse over a plotly map, without a round trip to the server.

plotly's hover labels cannot hold images, and a Streamlit rerun per hovered point would make the
map stutter. This element (a Streamlit components-v2 element: its JavaScript runs in the page,
not in an iframe) finds the plotly chart drawn inside ``st.container(key=<chart_box>)``, listens
to plotly's ``plotly_hover`` events and shows the hovered item's poster thumbnail, title and
details in its own box. Thumbnails travel once as data URIs (Streamlit caches large unchanged
messages in the browser); on big catalogues the page passes a capped sample and the panel says
when a hovered item has no thumbnail. Clicking stays plotly's own selection event (server side).

customdata of the map's points: [item_id, title, year, mean rating, n ratings, genres].
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import streamlit as st

_CSS = """
.recsys-hover { font-family: inherit; color: var(--st-text-color, #1f2328); min-height: 360px;
  border: 1px solid rgba(49, 51, 63, 0.2); border-radius: 8px; padding: 12px; }
.recsys-hover .hint { color: #5f6b7a; font-size: 0.9rem; }
.recsys-hover img { display: block; width: 100%; max-width: 220px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,.25); margin-bottom: 8px; }
.recsys-hover .title { font-weight: 700; font-size: 1.05rem; line-height: 1.25; margin-bottom: 4px; }
.recsys-hover .meta { font-size: 0.9rem; line-height: 1.35; }
.recsys-hover .noposter { width: 150px; height: 222px; background: #e4e4e4; color: #666;
  display: flex; align-items: center; justify-content: center; border-radius: 4px; margin-bottom: 8px;
  font-size: 0.85rem; text-align: center; padding: 6px; }
"""

_HTML = """<div class="recsys-hover" data-testid="recsys-hover-panel">
<div class="hint">Hover a point to see its poster; click it for its nearest posters.</div></div>"""

_JS = r"""
export default function(component) {
  const { data, parentElement } = component;
  const box = parentElement.querySelector('.recsys-hover');
  const thumbs = (data && data.thumbs) || {};
  const note = (data && data.note) || '';
  const selector = '.st-key-' + ((data && data.chart) || 'map') + ' .js-plotly-plot';
  const escape = (t) => String(t === null || t === undefined ? '' : t)
      .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const show = (cd) => {
    if (!cd || cd.length < 2) { return; }
    const id = String(cd[0]);
    const uri = thumbs[id];
    const hasYear = /\(\d{4}\)\s*$/.test(String(cd[1]));
    const year = (hasYear || cd[2] === null || cd[2] === undefined || Number.isNaN(cd[2])) ? '' : ' (' + Math.round(cd[2]) + ')';
    const mean = (typeof cd[3] === 'number' && !Number.isNaN(cd[3])) ? cd[3].toFixed(2) : 'n/a';
    const image = uri
      ? '<img class="recsys-hover-img" data-item="' + escape(id) + '" src="' + uri + '" alt="poster">'
      : '<div class="noposter" data-item="' + escape(id) + '">' + escape(note || 'no poster') + '</div>';
    box.innerHTML = image + '<div class="title">' + escape(cd[1]) + escape(year) + '</div>'
      + '<div class="meta">' + escape(cd[5] || '') + '<br>mean rating ' + mean + ' · '
      + escape(cd[4]) + ' ratings<br><span class="hint">item ' + escape(id) + ' · click for its neighbours</span></div>';
    box.setAttribute('data-item', id);
  };
  let hooked = null;
  const hook = () => {
    const gd = document.querySelector(selector);
    if (gd && gd !== hooked && typeof gd.on === 'function') {
      hooked = gd;
      gd.on('plotly_hover', (event) => {
        const point = event && event.points && event.points[0];
        if (point) { show(point.customdata); }
      });
    }
  };
  hook();
  const timer = setInterval(hook, 400);
  return () => clearInterval(timer);
}
"""

_component = None


def _element():
    global _component
    if _component is None:
        _component = st.components.v2.component("recsys_hover_poster", html=_HTML, css=_CSS, js=_JS)
    return _component


def hover_panel(chart_box: str, thumbnails: Mapping[int, str | None], note: str = "", key: str | None = None):
    """The hover panel for the plotly chart inside ``st.container(key=chart_box)``.

    thumbnails: item id -> data URI (None or absent: "no poster" box with `note`).
    """
    thumbs = {str(int(k)): v for k, v in thumbnails.items() if v}
    data = {"chart": chart_box, "thumbs": thumbs, "note": note}
    json.dumps(data)  # fail here, not in the browser, if something is not serialisable
    return _element()(key=key or f"hover_{chart_box}", data=data, height="content")
