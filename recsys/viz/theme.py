"""One plotly look for every figure: a screen template, a projector template, colours, export subtitles.

Figure builders in :mod:`recsys.viz` stay free of styling; pages (through ``recsys.ui``) call
:func:`apply` once per figure, which picks the template for the mode, adds the subtitle an
exported file needs (dataset · protocol · date) and leaves room so that legends and titles never
clip, on screen or in a PNG export (:func:`export_config` fixes the PNG's size and scale).

Sizes are in CSS pixels. In presentation mode tick labels are 20 px (the bar is 18 px at the back
of a room), titles 30 px, lines and markers thicker, text near-black on white: the projector's
washed-out greys are the first thing an audience loses.
"""

from __future__ import annotations

import datetime as _dt

import plotly.graph_objects as go
import plotly.io as pio

SCREEN = "recsys"
PROJECTOR = "recsys_presentation"

FONT_FAMILY = "Inter, 'Source Sans Pro', 'Helvetica Neue', Arial, sans-serif"
TEXT = "#1f2328"
GRID = "#dfe3e8"

# Okabe-Ito + Tableau: colour-blind safe first, every one dark enough to read on white.
COLORWAY = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#8C6D31",
    "#7F3C8D",
    "#3969AC",
    "#11A579",
)

# MovieLens genres get fixed colours, so Drama is the same colour on every chart and every page.
# 20 clearly distinct colours (after Trubetskoy's "20 simple distinct colours", with the pastel
# ones, which vanish on a white slide, replaced by darker hues): the genres that are frequent
# together (Drama, Comedy, Thriller, Action, Romance, Horror, Sci-Fi) differ in hue *and* lightness.
GENRE_COLOURS = {
    "Action": "#E6194B",  # red
    "Adventure": "#F58231",  # orange
    "Animation": "#3CB44B",  # green
    "Children": "#42D4F4",  # cyan
    "Comedy": "#D4A600",  # gold (a yellow that reads on white)
    "Crime": "#469990",  # teal
    "Documentary": "#A9A9A9",  # grey
    "Drama": "#4363D8",  # blue
    "Fantasy": "#911EB4",  # purple
    "Film-Noir": "#6D6D6D",  # dark grey
    "Horror": "#222222",  # black
    "Musical": "#F032E6",  # magenta
    "Mystery": "#000075",  # navy
    "Romance": "#F781BF",  # pink
    "Sci-Fi": "#7FB800",  # lime
    "Thriller": "#9A6324",  # brown
    "War": "#808000",  # olive
    "Western": "#800000",  # maroon
    "IMAX": "#9A7FD1",  # lavender
}
SPARE = ("#00A86B",)  # jade, for a 20th category
DISTINCT = tuple(GENRE_COLOURS.values()) + SPARE
MOVIELENS_GENRES = tuple(GENRE_COLOURS)
MISSING_COLOUR = "#C8C8C8"  # (none), unknown, other


def genre_colour_map(names) -> dict[str, str]:
    """A colour per genre name: MovieLens genres keep fixed colours, others take the next free one."""
    canonical = {g.lower().replace("'s", ""): i for i, g in enumerate(MOVIELENS_GENRES)}
    colours, used = {}, set()
    for name in names:
        key = str(name).lower().replace("'s", "")
        if key in ("(none)", "unknown", "(no genres listed)", "other"):
            colours[name] = MISSING_COLOUR
        elif key in canonical:
            colours[name] = DISTINCT[canonical[key] % len(DISTINCT)]
            used.add(colours[name])
    spare = [c for c in DISTINCT if c not in used]
    for name in names:
        if name not in colours:
            colours[name] = spare.pop(0) if spare else DISTINCT[len(colours) % len(DISTINCT)]
    return colours


def _axis(size: int, line: str) -> dict:
    return dict(
        showgrid=True,
        gridcolor=GRID,
        zeroline=False,
        linecolor=line,
        ticks="outside",
        tickcolor=line,
        tickfont=dict(size=size, color=TEXT),
        title=dict(font=dict(size=size + 2, color=TEXT), standoff=12),
        automargin=True,
    )


def _template(tick: int, title: int, legend: int, line_width: float, marker: int) -> go.layout.Template:
    base = pio.templates["plotly_white"]
    template = go.layout.Template(base)
    template.layout.update(
        font=dict(family=FONT_FAMILY, size=tick, color=TEXT),
        title=dict(font=dict(size=title, color=TEXT), x=0.0, xanchor="left", automargin=True),
        colorway=list(COLORWAY),
        xaxis=_axis(tick, "#5f6b7a"),
        yaxis=_axis(tick, "#5f6b7a"),
        legend=dict(
            font=dict(size=legend, color=TEXT), title=dict(font=dict(size=legend)), bgcolor="rgba(255,255,255,0.85)"
        ),
        hoverlabel=dict(font=dict(size=max(13, tick - 2))),
        margin=dict(l=10, r=10, t=title * 3 + 20, b=10),
        coloraxis=dict(colorbar=dict(tickfont=dict(size=tick), title=dict(font=dict(size=tick)))),
    )
    template.data.scatter = [go.Scatter(line=dict(width=line_width), marker=dict(size=marker))]
    template.data.bar = [go.Bar(textfont=dict(size=tick), marker=dict(line=dict(width=0)))]
    template.data.heatmap = [go.Heatmap(textfont=dict(size=max(12, tick - 4)))]
    return template


def register() -> None:
    """Add the two templates to plotly's registry (idempotent)."""
    if SCREEN not in pio.templates:
        pio.templates[SCREEN] = _template(tick=13, title=18, legend=13, line_width=2, marker=6)
    if PROJECTOR not in pio.templates:
        pio.templates[PROJECTOR] = _template(tick=20, title=30, legend=20, line_width=3.5, marker=10)


register()

TICK_SIZE = {SCREEN: 13, PROJECTOR: 20}
TITLE_SIZE = {SCREEN: 18, PROJECTOR: 30}


def subtitle_text(dataset: str | None, protocol: str | None = None, date: _dt.date | None = None) -> str:
    """'ml-100k · 80/20 holdout (seed 0) · 2026-05-01': what an exported figure must say about itself."""
    date = date or _dt.date.today()
    parts = [p for p in (dataset, protocol) if p]
    return " · ".join([*parts, date.isoformat()])


def apply(
    fig: go.Figure,
    *,
    presentation: bool = False,
    dataset: str | None = None,
    protocol: str | None = None,
    date: _dt.date | None = None,
    mark: str | None = None,
) -> go.Figure:
    """Style `fig` in place for the mode and give it its subtitle; returns it.

    The subtitle (dataset · protocol · date, plus `mark`, e.g. "synthetic demo data") sits under
    the title, so it travels with every HTML and PNG export. Builders' explicit font sizes are
    overridden: one number per mode for every chart.
    """
    name = PROJECTOR if presentation else SCREEN
    tick, title = TICK_SIZE[name], TITLE_SIZE[name]
    text = subtitle_text(dataset, protocol, date) + (f" · {mark}" if mark else "")
    current = fig.layout.title.text or ""
    fig.update_layout(
        template=name,
        font=dict(family=FONT_FAMILY, size=tick, color=TEXT),
        title=dict(
            text=current or " ",
            font=dict(size=title, color=TEXT),
            subtitle=dict(text=text, font=dict(size=max(12, tick - 1), color="#4a5561")),
            x=0.0,
            xanchor="left",
            automargin=True,
        ),
        legend=dict(font=dict(size=tick, color=TEXT), title=dict(font=dict(size=tick, color=TEXT))),
        hoverlabel=dict(font=dict(size=max(13, tick - 2))),
    )
    fig.update_xaxes(tickfont=dict(size=tick, color=TEXT), title_font=dict(size=tick + 2, color=TEXT), automargin=True)
    fig.update_yaxes(tickfont=dict(size=tick, color=TEXT), title_font=dict(size=tick + 2, color=TEXT), automargin=True)
    fig.update_annotations(font_size=tick)  # subplot titles, hline labels
    if presentation:
        # log axes label 2 and 5 between the decades at 3/4 of the tick size (15 px): decades only
        fig.update_xaxes(selector=dict(type="log"), dtick=1)
        fig.update_yaxes(selector=dict(type="log"), dtick=1)
        fig.update_traces(selector=dict(type="scatter", mode="lines"), line_width=3.5)
        fig.update_traces(selector=dict(type="scatter", mode="lines+markers"), line_width=3.5)
    # Room above the plot for a title of two lines and the subtitle; legends get their own margin.
    fig.update_layout(margin=dict(t=int(title * 2.2 + tick * 2.4) + 10))
    return fig


def export_config(filename: str, *, width: int = 1600, height: int = 900, scale: int = 2) -> dict:
    """plotly's modebar config: PNG at a fixed layout size (legends are laid out for that size, not
    squeezed into a narrow column) and twice the pixels for slides; no plotly logo."""
    return {
        "displaylogo": False,
        "toImageButtonOptions": {
            "format": "png",
            "filename": filename,
            "width": width,
            "height": height,
            "scale": scale,
        },
    }
