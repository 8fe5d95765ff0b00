"""Streamlit pieces of the Draw page: the canvas's own tools, and the figures.

The canvas component (streamlit-drawable-canvas 0.13) has no option to hide its hover
toolbar, whose invisible band over the canvas's top-right corner swallowed quick
strokes; it waits 200 ms after mouse-up before sending a drawing; and when a new stroke
width reaches it (in a rerun, some 100-300 ms after the user picked it) it replaces its
brush, so a stroke begun in between lost its start and kept the old width.
``canvas_tools`` is a tiny component of our own, mounted under the canvas, that:

- hides that toolbar (a style rule added to the canvas's shadow root),
- offers Undo and Clear that press the toolbar's own Undo and Reset buttons, so the
  canvas clears itself in the browser: nothing is remounted and no server round trip
  sits between Clear and the next stroke,
- presses the toolbar's "send" button on mouse-up, so the drawing goes at once instead
  of after the component's 200 ms debounce,
- owns the stroke-width slider. From the moment a new width is picked until the canvas
  has it, a stroke that starts on the canvas is held (its mouse events recorded and kept
  from the canvas) and then replayed, so it is drawn whole and at the new width.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core import fmt

STROKE_WIDTH = 20  # px on the 280 px canvas: the page's default
STROKE_RANGE = (8, 40)
TOOLS_KEY = "draw_canvas_tools"
_WIDTH_TAG = 1000  # see width_tag

_JS = """
export default function (component) {
  const { parentElement, data, setStateValue } = component;
  const S = (window.__cnnStudioCanvas ||= { held: [], pending: null, holding: false });
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
  const send = () => setTimeout(() => press("Update the app with this drawing"), 0);
  const at = (e) => (e.touches && e.touches[0]) || (e.changedTouches && e.changedTouches[0]) || e;
  const hold = (type, e) => { const p = at(e); S.held.push([type, p.clientX, p.clientY]); };

  // The canvas has the width now: play the held stroke to it, as the mouse made it.
  const replay = () => {
    S.pending = null;
    const r = root();
    const target = r && r.querySelector("canvas.upper-canvas");
    const events = S.held;
    S.held = [];
    S.holding = false;  // a stroke still under way goes on live from here
    if (!target || !events.length) return;
    S.replaying = true;
    for (const [type, x, y] of events)
      target.dispatchEvent(new MouseEvent(type, { clientX: x, clientY: y, button: 0,
        buttons: type === "mouseup" ? 0 : 1, bubbles: true, composed: true, cancelable: true,
        view: window }));
    S.replaying = false;
    if (events[events.length - 1][0] === "mouseup") send();
  };

  const prepare = () => {
    const r = root();
    if (!r || r.__cnnStudio) return;
    r.__cnnStudio = true;
    const style = document.createElement("style");
    style.textContent = ".dc-toolbar{display:none !important}";
    r.appendChild(style);
    // A stroke starting while a new width is on its way is held, not given to the canvas.
    const start = (e) => {
      if (S.pending === null || S.replaying || !e.target.matches("canvas.upper-canvas")) return;
      e.preventDefault();
      e.stopImmediatePropagation();
      S.holding = true;
      hold("mousedown", e);
    };
    r.addEventListener("mousedown", start, true);
    r.addEventListener("touchstart", start, { capture: true, passive: false });
    // Mouse-up: send now (the toolbar's send button) rather than after the 200 ms debounce.
    r.querySelector(".dc-root").addEventListener("pointerup", () => { if (!S.holding) send(); });
    S.ready = true;
  };
  if (!S.listening) {
    S.listening = true;
    for (const [type, as] of [["mousemove", "mousemove"], ["touchmove", "mousemove"],
                              ["mouseup", "mouseup"], ["touchend", "mouseup"]])
      window.addEventListener(type, (e) => {
        if (!S.holding || S.replaying) return;
        hold(as, e);
      }, true);
  }
  if (!S.timer) S.timer = setInterval(prepare, 250);  // the canvas may mount (or remount) later
  prepare();

  // The width the canvas has taken: it shows it as its scroll box's max-height (see width_tag).
  const canvasWidth = () => {
    const r = root();
    const box = r && r.querySelector(".dc-scroll");
    return box ? parseInt(box.style.maxHeight, 10) - data.tag : null;
  };
  const watch = () => {
    if (S.pending === null) { S.watching = false; return; }
    if (S.sentAt && (canvasWidth() === S.pending || performance.now() - S.sentAt > 3000)) {
      S.watching = false;  // never hold a stroke for more than 3 s
      replay();
      return;
    }
    requestAnimationFrame(watch);
  };
  const slider = parentElement.querySelector("#width");
  const label = parentElement.querySelector("#width-value");
  slider.min = data.min;
  slider.max = data.max;
  if (S.pending === null) slider.value = data.width;
  label.textContent = `${slider.value} px`;
  slider.oninput = () => {
    label.textContent = `${slider.value} px`;
    S.pending = Number(slider.value);
    S.sentAt = null;
    clearTimeout(S.debounce);
    S.debounce = setTimeout(() => {  // one rerun for a quick run of key presses
      setStateValue("width", S.pending);
      S.sentAt = performance.now();
    }, 120);
    if (!S.watching) { S.watching = true; requestAnimationFrame(watch); }
  };
  parentElement.querySelector("#undo").onclick = () => press("Undo");
  parentElement.querySelector("#clear").onclick = () => press("Reset canvas & history");
}
"""
_HTML = """<div class="tools"><div class="buttons">
<button id="undo" type="button">↶ Undo</button><button id="clear" type="button">✕ Clear</button></div>
<label class="width">Stroke width<input id="width" type="range" step="1" aria-label="Stroke width">
<span id="width-value"></span></label></div>"""
_CSS = """.tools{display:flex;flex-direction:column;gap:.5rem;margin-top:.25rem;max-width:280px;
color:var(--st-text-color,#31333f);font-size:.9rem}
.buttons{display:flex;gap:.5rem}
.width{display:flex;align-items:center;gap:.5rem}
#width{flex:1;min-width:0;accent-color:var(--st-primary-color,#4f46e5)}
#width-value{min-width:3.2em;text-align:right;font-variant-numeric:tabular-nums}
button{font:inherit;padding:.3rem .9rem;border-radius:.5rem;cursor:pointer;
border:1px solid var(--st-border-color,#d0d0d8);background:var(--st-background-color,#fff);
color:var(--st-text-color,#31333f)}
button:hover{border-color:var(--st-primary-color,#4f46e5);color:var(--st-primary-color,#4f46e5)}"""
_tools = st.components.v2.component("cnn_studio.canvas_tools", html=_HTML, css=_CSS, js=_JS)


def stroke_width() -> int:
    """The width the user picked in the tools below the canvas (read before drawing the canvas)."""
    state = st.session_state.get(TOOLS_KEY) or {}
    width = state.get("width", STROKE_WIDTH) if hasattr(state, "get") else STROKE_WIDTH
    low, high = STROKE_RANGE
    return int(min(max(int(width), low), high))


def width_tag(width: int) -> int:
    """The canvas's ``max_display_height`` that tells the tools which stroke width it has taken.

    The canvas applies new props when its own script call arrives, which may come after ours;
    the component offers no event for it, so the width rides on a prop it shows in the page
    (its scroll box's max-height, far above the canvas's 280 px, so nothing is clipped).
    """
    return _WIDTH_TAG + width


def canvas_tools(width: int) -> None:
    """Stroke width, Undo and Clear for the canvas above, and its toolbar hidden (see the module's note)."""
    low, high = STROKE_RANGE
    _tools(key=TOOLS_KEY, data={"width": width, "min": low, "max": high, "tag": _WIDTH_TAG},
           default={"width": STROKE_WIDTH}, on_width_change=lambda: None)


def probability_chart(probs: np.ndarray, highlight: int | None) -> go.Figure:
    colors = ["#4f46e5" if i == highlight else "#b0b4c0" for i in range(len(probs))]
    fig = go.Figure(go.Bar(x=[str(i) for i in range(len(probs))], y=probs.tolist(), marker_color=colors,
                           text=[fmt.pct(v, 0) if v >= 0.005 else "" for v in probs], textposition="outside",
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
