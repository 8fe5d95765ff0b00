"""Streamlit pieces of the Draw page: the canvas's own buttons, and the figures.

The canvas component (streamlit-drawable-canvas 0.13) has no option to hide its hover
toolbar, whose invisible band over the canvas's top-right corner swallowed quick
strokes, and it waits 200 ms after mouse-up before sending a drawing. ``canvas_tools``
is a tiny component of our own, mounted under the canvas, that:

- hides that toolbar (a style rule added to the canvas's shadow root),
- offers Undo and Clear that press the toolbar's own Undo and Reset buttons, so the
  canvas clears itself in the browser: nothing is remounted and no server round trip
  sits between Clear and the next stroke,
- presses the toolbar's "send" button on mouse-up, so the drawing goes at once instead
  of after the component's 200 ms debounce.

Known limit: a new stroke width reaches the canvas in a rerun; if it arrives while a stroke
is being drawn, the component swaps its brush and that stroke's start is lost (see
tests/test_draw_strokes.py). Fixing it needs an option in the component.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

_JS = """
export default function (component) {
  const { parentElement } = component;
  const S = (window.__cnnStudioCanvas ||= {});
  const root = () => {
    for (const el of document.querySelectorAll("*")) {
      const r = el.shadowRoot;
      if (r && r.querySelector(".dc-root")) return r;
    }
    return null;
  };
  const press = (label) => {
    const r = root();
    const b = r && r.querySelector(`button[aria-label="${label}"]`);
    if (b && !b.disabled) b.click();
  };
  const prepare = () => {
    const r = root();
    if (!r || r.__cnnStudio) return;
    r.__cnnStudio = true;
    const style = document.createElement("style");
    style.textContent = ".dc-toolbar{display:none !important}";
    r.appendChild(style);
    // Mouse-up: send now (the toolbar's send button) rather than after the 200 ms debounce.
    r.querySelector(".dc-root").addEventListener("pointerup", () =>
      setTimeout(() => press("Update the app with this drawing"), 0));
    S.ready = true;
  };
  if (!S.timer) S.timer = setInterval(prepare, 250);  // the canvas may mount (or remount) later
  prepare();
  parentElement.querySelector("#undo").onclick = () => press("Undo");
  parentElement.querySelector("#clear").onclick = () => press("Reset canvas & history");
}
"""
_HTML = """<div class="tools"><button id="undo" type="button">↶ Undo</button>
<button id="clear" type="button">✕ Clear</button></div>"""
_CSS = """.tools{display:flex;gap:.5rem;margin-top:.25rem}
button{font:inherit;padding:.3rem .9rem;border-radius:.5rem;cursor:pointer;
border:1px solid var(--st-border-color,#d0d0d8);background:var(--st-background-color,#fff);
color:var(--st-text-color,#31333f)}
button:hover{border-color:var(--st-primary-color,#4f46e5);color:var(--st-primary-color,#4f46e5)}"""
_tools = st.components.v2.component("cnn_studio.canvas_tools", html=_HTML, css=_CSS, js=_JS)


def canvas_tools(key: str = "draw_canvas_tools") -> None:
    """Undo and Clear for the canvas above, and its toolbar hidden (see the module's note)."""
    _tools(key=key)


def probability_chart(probs: np.ndarray, highlight: int | None) -> go.Figure:
    colors = ["#4f46e5" if i == highlight else "#b0b4c0" for i in range(len(probs))]
    fig = go.Figure(go.Bar(x=[str(i) for i in range(len(probs))], y=probs.tolist(), marker_color=colors,
                           text=[f"{v:.0%}" if v >= 0.005 else "" for v in probs], textposition="outside",
                           hovertemplate="digit %{x}: %{y:.1%}<extra></extra>"))
    fig.update_layout(height=240, margin=dict(l=10, r=10, t=10, b=10), yaxis=dict(range=[0, 1.15]),
                      xaxis=dict(type="category"), xaxis_title="digit", yaxis_title="probability")
    return fig


def feature_map_figure(grid: np.ndarray, columns: int, tiles: int) -> go.Figure:
    """A mosaic of feature maps (one heatmap trace: fast to draw), brighter = stronger."""
    fig = go.Figure(go.Heatmap(z=grid, colorscale="Viridis", showscale=False, hoverongaps=False,
                               hovertemplate="%{z:.2f}<extra></extra>"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    rows = -(-tiles // columns)
    fig.update_layout(height=100 * rows + 10, margin=dict(l=0, r=0, t=0, b=0))
    return fig


def saliency_figure(image: np.ndarray, saliency: np.ndarray) -> go.Figure:
    """The digit in grey with the saliency as a heat overlay and a colour legend."""
    heat = np.where(saliency >= 0.1, saliency, np.nan)  # faint pixels stay see-through
    fig = go.Figure([
        go.Heatmap(z=image, colorscale="gray", showscale=False, hoverinfo="skip", zmin=0, zmax=1),
        go.Heatmap(z=heat, colorscale="Hot", reversescale=True, zmin=0, zmax=1, opacity=0.75,
                   hovertemplate="influence %{z:.2f}<extra></extra>",
                   colorbar=dict(title="influence", tickvals=[0.1, 0.5, 1], ticktext=["low", "", "high"],
                                 thickness=12)),
    ])
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    fig.update_layout(height=300, margin=dict(l=0, r=0, t=0, b=0))
    return fig
