"""Theory: the chapter's questions, each answered briefly and demonstrated with real numbers."""
import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st
from PIL import Image

from core import config, fmt
from core.learn import theory

SECTIONS = theory.SECTIONS


@st.cache_data(show_spinner=False)
def _digits_in(root: str, n: int) -> tuple[np.ndarray, str | None]:
    return theory.digits_with_source(n)


def digits_and_why(n: int = 16) -> tuple[np.ndarray, str | None]:
    """Digits (or stand-ins and why), cached per data root so moving the data is seen at once."""
    return _digits_in(str(config.data_root()), n)


def digits(n: int = 16) -> np.ndarray:
    return digits_and_why(n)[0]


@st.cache_data(show_spinner=False)
def _flower_in(root: str) -> np.ndarray | None:
    return theory.flower_image(128)


def flower() -> np.ndarray | None:
    return _flower_in(str(config.data_root()))


@st.cache_resource(show_spinner="Running MobileNetV2's first layer…")
def feature_maps():
    rgb = flower()
    if rgb is None:
        rgb = (np.stack([theory.synthetic_image(128)] * 3, -1) * 255).astype(np.uint8)
    maps, source = theory.mobilenet_feature_maps(rgb)
    return rgb, maps, source


@st.cache_resource(show_spinner="Training a small digit classifier (a few seconds)…")
def classifier():
    model, accuracy = theory.train_digit_classifier()
    return model, theory.dense_to_conv(model), accuracy


@st.cache_data(show_spinner=False)
def shift_rows(kernel_name: str, shifts: tuple, root: str) -> list[dict]:
    return theory.shift_experiment(digits(), theory.KERNELS[kernel_name], shifts)


def picture(array: np.ndarray, size: int = 200) -> Image.Image:
    """A grey array as an image scaled to ``size`` px wide with visible pixels (min-max scaled)."""
    a = np.asarray(array, np.float32)
    a = (a - a.min()) / (a.max() - a.min()) if a.max() > a.min() else np.zeros_like(a)
    img = Image.fromarray((a * 255).astype(np.uint8))
    return img.resize((size, max(1, round(size * a.shape[0] / a.shape[1]))), Image.NEAREST)


st.title(":material/school: CNN theory, demonstrated")
st.caption("Each answer is short; the numbers beside it are computed live by TensorFlow/Keras "
           "(and checked by the test suite).")
section = st.radio("Question", SECTIONS, key="theory_section", horizontal=True)
st.divider()


def why_cnns():
    st.subheader(SECTIONS[0])
    st.markdown(
        "- **Local connectivity**: a neuron looks at a small patch, not at every pixel.\n"
        "- **Weight sharing**: the same small kernel slides over the whole image, so a feature learned "
        "in one place is detected everywhere, with a handful of weights.\n"
        "- **Hierarchy**: stacked layers combine edges into parts and parts into objects, while pooling "
        "or strides shrink the maps.\n\n"
        "Compare one conv layer with a dense layer producing the same number of outputs:")
    c = st.columns(5)
    h = c[0].number_input("Height", 4, 1024, 28, key="t1_h")
    w = c[1].number_input("Width", 4, 1024, 28, key="t1_w")
    ch = c[2].number_input("Channels", 1, 4, 1, key="t1_c")
    f = c[3].number_input("Feature maps", 1, 512, 32, key="t1_f")
    k = c[4].number_input("Kernel", 1, 11, 3, key="t1_k")
    counts = theory.dense_vs_conv(h, w, ch, f, k)
    m = st.columns(3)
    m[0].metric("Conv layer parameters", f"{counts['conv']:,}")
    m[1].metric("Dense layer parameters", f"{counts['dense']:,}")
    m[2].metric("Dense / conv", f"{counts['ratio']:,.0f}x")
    st.caption(f"Both produce {counts['outputs']:,} outputs ({h}x{w}x{f}). Conv: {k}x{k}x{ch}x{f} weights "
               f"+ {f} biases, whatever the image size. Dense: one weight per input-output pair.")


def convolution():
    st.subheader(SECTIONS[1])
    st.markdown("A kernel slides over the image; each output is the sum of the kernel times the patch "
                "under it (Keras computes cross-correlation). **Stride** skips positions; **'same'** "
                "padding adds zeros so that the output is ceil(n / stride), **'valid'** uses none: "
                "floor((n - k) / stride) + 1.")
    sources = (["MNIST digit"] if digits_and_why()[1] is None else []) + ["Shapes"] \
        + (["Flower photo (grey)"] if flower() is not None else [])
    drawing = st.session_state.get("last_drawing")  # left by the Draw page
    if drawing is not None:
        sources.insert(0, "Your drawing")
    c = st.columns([1, 1, 1, 1])
    source = c[0].selectbox("Image", sources, key="t2_src")
    name = c[1].selectbox("Kernel", list(theory.KERNELS), index=1, key="t2_kernel")
    stride = c[2].slider("Stride", 1, 4, 1, key="t2_stride")
    padding = c[3].radio("Padding", ["same", "valid"], key="t2_pad", horizontal=True)
    image = {"MNIST digit": lambda: digits()[0], "Shapes": lambda: theory.synthetic_image(64),
             "Flower photo (grey)": lambda: flower().mean(-1) / 255,
             "Your drawing": lambda: drawing}[source]()
    st.caption("Edit the kernel's numbers:")
    kernel = st.data_editor(pd.DataFrame(theory.KERNELS[name], columns=["a", "b", "c"]),
                            key=f"t2_grid_{name}", hide_index=True, width=300)
    try:
        values = kernel.astype(float).to_numpy()
        if np.isnan(values).any():
            raise ValueError("every kernel cell needs a number")
        out = theory.convolve(image, values, stride, padding)
    except ValueError as exc:
        st.error(f"{exc}. Edit the kernel or the settings.", icon=":material/error:")
        return
    left, right = st.columns(2)
    left.image(picture(image, 280), caption=f"input {image.shape[0]}x{image.shape[1]}")
    right.image(picture(out, 280), caption=f"output {out.shape[0]}x{out.shape[1]}")
    expected = theory.output_size(image.shape[0], 3, stride, padding)
    st.markdown(f"Output height by the rule: **{expected}**; computed by TensorFlow: **{out.shape[0]}**.")


def pooling():
    st.subheader(SECTIONS[2])
    images, why = digits_and_why()
    what = "16 MNIST digits" if why is None else "16 copies of a drawn shape"
    st.markdown("Max pooling keeps the strongest response in each window, so a feature that moves a "
                "pixel within its window gives the same output: a little **translation invariance**. "
                f"Here the same kernel down-samples {what} by 2 in two ways, and each one is "
                "shifted right by 1 to 3 pixels.")
    if why:
        st.info(f"{why}; until then the shapes stand in for digits.", icon=":material/info:")
    name = st.selectbox("Kernel", list(theory.KERNELS), index=1, key="t3_kernel")
    rows = pd.DataFrame(shift_rows(name, (1, 2, 3), str(config.data_root())))
    st.dataframe(rows, hide_index=True, key="t3_table",
                 column_config={"relative change": st.column_config.NumberColumn(format="%.3f")})
    fig = px.bar(rows, x="shift (px)", y="relative change", color="down-sampling", barmode="group",
                 height=320)
    st.plotly_chart(fig, key="t3_chart")
    st.caption("Relative change = mean |output(shifted) - output(original)| / mean |output(original)|.")


def lrn():
    st.subheader(SECTIONS[3])
    st.markdown("AlexNet's **local response normalization** makes strongly active channels inhibit "
                "their neighbours at the same pixel (lateral inhibition), which pushes maps to "
                "specialize:")
    st.latex(r"b_i = a_i \Big/ \Big(k + \alpha \sum_{j=i-r}^{i+r} a_j^2\Big)^{\beta}")
    c = st.columns(4)
    r = c[0].slider("depth radius r", 1, 8, 2, key="t4_r")
    k = c[1].slider("bias k", 0.5, 4.0, 2.0, key="t4_k")
    alpha = c[2].select_slider("alpha", [1e-4, 1e-3, 1e-2, 0.1, 1.0], 1e-4, key="t4_a")
    beta = c[3].slider("beta", 0.25, 1.5, 0.75, key="t4_b")
    why = theory.lrn_weights_missing()
    if why:
        st.info(f"{why}. The formula above is all this section adds to it.", icon=":material/info:")
        return
    rgb, maps, source = feature_maps()
    out = theory.lrn(maps, r, k, alpha, beta)
    channel = st.slider("Channel", 0, maps.shape[-1] - 1, 0, key="t4_ch")
    cols = st.columns(3)
    cols[0].image(Image.fromarray(rgb).resize((200, 200)), caption="input")
    cols[1].image(picture(maps[..., channel]), caption=f"channel {channel} before")
    cols[2].image(picture(out[..., channel]), caption=f"channel {channel} after LRN")
    active = maps > 0
    scale = out[active] / maps[active]
    st.metric("Mean scale factor on active units", f"{scale.mean():.4f}",
              help="b/a averaged over positive activations")
    st.caption(f"Feature maps: first layer (Conv1 + ReLU6) of ImageNet-trained MobileNetV2 alpha 0.35 "
               f"({source}), {maps.shape[0]}x{maps.shape[1]}x{maps.shape[2]}. AlexNet used r=2, k=2, "
               "alpha=1e-4, beta=0.75: with such small alpha the effect is nearly a constant scale; "
               "raise alpha to see strong channels suppress weak ones.")
    table = pd.DataFrame({"channel": range(maps.shape[-1]), "mean before": maps.mean((0, 1)),
                          "mean after": out.mean((0, 1))})
    table["kept"] = table["mean after"] / table["mean before"].where(table["mean before"] > 0)
    st.dataframe(table, hide_index=True, key="t4_table", height=240)


def architectures():
    st.subheader(SECTIONS[4])
    rows = pd.DataFrame(theory.architecture_table())[
        ["name", "year", "top5", "params", "counted model", "idea"]]
    rows["params"] = rows["params"].map(fmt.count)
    rows["year"] = rows["year"].astype(str)
    st.table(rows.set_index("name"))  # a static table wraps the "idea" text instead of cutting it
    st.caption(theory.TOP5_NOTE + " Parameter counts come from Keras models built with `weights=None` "
               "(cached by `bench/architecture_params.py`) or from this app's calculator.")
    cols = st.columns(2)
    for i, (name, dot) in enumerate(theory.DIAGRAMS.items()):
        with cols[i % 2], st.container(border=True):
            st.markdown(f"**{name}**")
            st.graphviz_chart(dot)


def fcn():
    st.subheader(SECTIONS[5])
    st.markdown("A dense layer on an h x w x c map is a convolution with an h x w kernel and 'valid' "
                "padding: reshape its weights and the outputs are identical. Later dense layers become "
                "1x1 convolutions. The network then accepts **any image size** and returns a map of "
                "predictions, one per window, computed in a single pass.")
    val, why = digits_and_why(16)
    if why:
        st.info(f"{why}. This section trains a small digit classifier on them to show it.",
                icon=":material/info:")
        return
    model, fcn_model, accuracy = classifier()
    diff = theory.compare_dense_conv(model, fcn_model, val[:8, ..., None])
    m = st.columns(2)
    m[0].metric("Classifier's validation accuracy", fmt.pct(accuracy, 1),
                help="3,000 MNIST training digits, 2 epochs")
    m[1].metric("Largest |dense - conv| output difference", f"{diff:.1e}")
    n = st.slider("Digits on the wide image", 2, 6, 4, key="t6_n")
    strip = theory.digit_strip(val[:n])
    heat = fcn_model.predict(strip[None, ..., None], verbose=0)[0, 0]
    st.image(picture(strip, 28 * n * 4), caption=f"input 28x{strip.shape[1]}")
    fig = px.imshow(heat.T, aspect="auto", color_continuous_scale="Blues", height=330,
                    labels={"x": "window position (stride 4 px)", "y": "class", "color": "probability"})
    st.plotly_chart(fig, key="t6_heat")
    aligned = [heat[7 * i].argmax() for i in range(n)]
    st.markdown(f"At the windows aligned with the digits (positions 0, 7, 14, …) the map predicts "
                f"**{', '.join(map(str, aligned))}**; in between it sees halves of two digits.")


def segmentation():
    st.subheader(SECTIONS[6])
    st.markdown(
        "Segmentation labels every pixel. Classification nets down-sample by 32, so their maps are "
        "too coarse for boundaries, yet each pixel's label needs **global context** (what object is "
        "this?) as well as **local detail** (where exactly is its edge?). Fixes: **upsampling** "
        "(transposed convolutions) back to full size, **skip connections** that bring finer, earlier "
        "maps to the decoder (FCN-8s, U-Net), and **dilated convolutions** that widen the view "
        "without down-sampling.")
    stride = st.select_slider("Output stride of the network", [1, 2, 4, 8, 16, 32], 8, key="t7_stride")
    images, why = digits_and_why()
    if why:
        st.caption(f"The mask is a drawn shape's: {why}.")
    mask = theory.digit_mask(images[0])
    coarse = theory.coarse_mask(mask, stride)
    cols = st.columns(2)
    cols[0].image(picture(mask, 224), caption="true mask (224x224)")
    cols[1].image(picture(coarse, 224), caption=f"best a stride-{stride} map can do, upsampled")
    st.metric("IoU with the true mask", f"{theory.iou(coarse, mask):.3f}")
    if not coarse.any():
        st.info(f"At stride {stride} each output pixel stands for a {stride}x{stride} block, and no "
                "block is more than half digit, so the best coarse map is all background: an empty "
                "mask and an IoU of 0. This is why segmentation nets upsample and use skip connections.",
                icon=":material/info:")
    rows = pd.DataFrame(theory.upsample_factor_rows(mask))
    st.dataframe(rows, hide_index=True, key="t7_iou")
    st.caption("A skip connection from a stride-8 layer is what lets FCN-8s recover the stride-8 row "
               "instead of the stride-32 one.")
    st.markdown("**Dilated convolutions**: four 3x3 layers, same parameter count, growing view.")
    rf = pd.DataFrame([{"dilations": str(d), "receptive field (formula)": theory.receptive_field(d),
                        "receptive field (measured)": theory.measured_receptive_field(d)}
                       for d in ([1, 1, 1, 1], [1, 2, 4, 8])])
    st.dataframe(rf, hide_index=True, key="t7_rf")


{SECTIONS[0]: why_cnns, SECTIONS[1]: convolution, SECTIONS[2]: pooling, SECTIONS[3]: lrn,
 SECTIONS[4]: architectures, SECTIONS[5]: fcn, SECTIONS[6]: segmentation}[section]()
