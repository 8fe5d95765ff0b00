"""Calculator: parameters, activations and memory of a CNN before training it."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import fmt
from core.learn import calculator as memory
from ui.common import machine_info

EXERCISE = "Exercise: 3 conv layers on 200x300 RGB"
OPTIMIZERS = {"sgd": "SGD (no state)", "momentum": "SGD + momentum (1 copy)", "adam": "Adam (2 copies)"}
DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16",
          "mixed": "mixed precision (float16 activations, float32 weights)"}


def mb(value) -> str:
    return "—" if value is None else f"{value / memory.MB:,.2f} MB"


st.title(":material/calculate: CNN memory calculator")
st.markdown(
    "Model a network's parameters and memory **before** training it. Every layer's output shape "
    "and parameter count equal what Keras builds (checked by the test suite on random stacks).")
with st.expander("Definitions used here", icon=":material/info:"):
    st.markdown(
        "- **MB = 10^6 bytes.** float32 = 4 bytes, float16/bfloat16 = 2 bytes.\n"
        "- **Activations**: every layer's output (elements = product of its output shape); the input "
        "image counts as activation 0.\n"
        "- **Inference peak** = the largest pair of consecutive activations (a layer's input and output "
        "exist together) x batch + all parameters.\n"
        "- **Training** = (input + every layer's output) x batch, kept for back-propagation, + parameters "
        "+ gradients (one per trainable parameter) + optimizer state (SGD none, momentum 1 copy, Adam 2 "
        "copies of the trainable parameters). Batch-norm moving averages are parameters without gradient.\n"
        "- **Mixed precision** (Keras `mixed_float16`): input and activations in float16; parameters, "
        "gradients and optimizer state in float32.\n"
        "- **MACs**: multiply-adds of conv and dense layers (bias, pooling, batch norm count 0).\n"
        "- Lower bounds: a framework also needs workspace (cuDNN), its own context (hundreds of MB on "
        "a GPU) and allocator slack.")

preset = st.selectbox("Preset", list(memory.PRESETS), key="calc_preset")
(h0, w0, c0), preset_layers = memory.preset(preset)
tag = list(memory.PRESETS).index(preset)  # widgets reset when the preset changes

cols = st.columns(6)
h = cols[0].number_input("Height", 1, 4096, h0, key=f"calc_h_{tag}")
w = cols[1].number_input("Width", 1, 4096, w0, key=f"calc_w_{tag}")
c = cols[2].number_input("Channels", 1, 64, c0, key=f"calc_c_{tag}")
batch = cols[3].number_input("Batch size", 1, 100_000, 50 if preset == EXERCISE else 32, key=f"calc_b_{tag}")
dtype = cols[4].selectbox("dtype", list(DTYPES), format_func=DTYPES.get, key="calc_dtype")
optimizer = cols[5].selectbox("Optimizer", list(OPTIMIZERS), format_func=OPTIMIZERS.get, key="calc_opt")

st.subheader("Layers")
st.caption("Edit cells, add rows at the bottom or delete them. `filters` is the unit count for Dense; "
           "`kernel` is the pool size for pooling layers; columns a layer does not use are ignored.")
table = st.data_editor(
    pd.DataFrame(memory.to_rows(preset_layers), columns=memory.COLUMNS),
    key=f"calc_table_{tag}", num_rows="dynamic", hide_index=False, width="stretch",
    column_config={
        "kind": st.column_config.SelectboxColumn("layer", options=memory.KINDS, required=True,
                                                 default="Conv2D"),
        "filters": st.column_config.NumberColumn("filters / units", min_value=0, step=1),
        "kernel": st.column_config.NumberColumn("kernel / pool", min_value=1, step=1),
        "stride": st.column_config.NumberColumn("stride", min_value=1, step=1),
        "padding": st.column_config.SelectboxColumn("padding", options=["same", "valid"]),
        "bias": st.column_config.CheckboxColumn("bias"),
        "depth_multiplier": st.column_config.NumberColumn("depth mult.", min_value=1, step=1),
    },
)

try:
    layers = memory.from_rows(table.to_dict("records"))
    report = memory.analyze((h, w, c), layers, dtype, batch, optimizer)
except ValueError as exc:
    st.error(f"{exc}. Fix the table above: your edits are kept.", icon=":material/error:")
    st.stop()

t = report.totals
st.subheader("Totals")
m = st.columns(4)
m[0].metric("Parameters", f"{report.params:,}", help=f"{report.trainable:,} trainable")
m[1].metric("Inference, 1 image", mb(t["inference_bytes_one"]))
m[2].metric(f"Inference, batch {batch}", mb(t["inference_bytes_batch"]))
m[3].metric(f"Training, batch {batch}", mb(t["training_bytes"]))
st.dataframe(pd.DataFrame([
    {"part": f"activations incl. input x {batch}", "bytes": t["training_activation_bytes"]},
    {"part": "parameters", "bytes": t["parameter_bytes"]},
    {"part": "gradients", "bytes": t["gradient_bytes"]},
    {"part": f"optimizer state ({OPTIMIZERS[optimizer]})", "bytes": t["optimizer_bytes"]},
    {"part": "training total", "bytes": t["training_bytes"]},
]).assign(MB=lambda d: d["bytes"] / memory.MB), hide_index=True, key="calc_breakdown",
   column_config={"bytes": st.column_config.NumberColumn(format="localized")})
st.caption(f"{t['macs']:,} multiply-adds per image · {t['activations_per_image']:,} activation values "
           "per image (input excluded).")

if preset == EXERCISE:
    st.subheader("The exercise: book answer against the complete one")
    book = memory.book_answer(layers)
    left, right = st.columns(2)
    with left, st.container(border=True):
        st.markdown("**Book-style answer**")
        st.metric("Parameters", f"{book['params']:,}")
        st.metric("RAM", f"{book['bytes'] / 1000:,.1f} KB")
        st.caption("3x3 x filters per layer, float32 weights only.")
    with right, st.container(border=True):
        st.markdown("**Complete answer**")
        st.metric("Parameters", f"{report.params:,}")
        st.metric("RAM for one prediction", mb(t["inference_bytes_one"]))
        st.caption(" + ".join(f"{r.params:,}" for r in report.layers if r.params))
    st.markdown(
        "Why the short answer is wrong: each filter spans **all input channels** (3x3x3 in the first "
        "layer, 3x3x100 in the second, 3x3x200 in the third), every filter has **one bias**, and the "
        "RAM must also hold the **feature maps**, which dwarf the weights here: "
        + ", ".join(f"{r.output_shape[0]}x{r.output_shape[1]}x{r.output_shape[2]} = "
                    f"{r.activations * memory.activation_bytes(dtype) / memory.MB:g} MB"
                    for r in report.layers if len(r.output_shape) == 3) + ".")

st.subheader("Per layer")
rows = pd.DataFrame(report.rows())
st.dataframe(rows, hide_index=True, key="calc_rows",
             column_config={"activation MB": st.column_config.NumberColumn(format="%.3f"),
                            **{c: st.column_config.NumberColumn(format="localized")
                               for c in ("params", "activations", "MACs")}})
fig = go.Figure([
    go.Bar(name="activations (1 image)", x=rows["layer"], y=rows["activation MB"]),
    go.Bar(name="parameters", x=rows["layer"],
           y=rows["params"] * memory.parameter_bytes(dtype) / memory.MB),
])
fig.update_layout(barmode="group", yaxis_title="MB (10^6 bytes)", height=380,
                  margin={"t": 30, "b": 10}, legend={"orientation": "h"})
st.plotly_chart(fig, key="calc_chart")

st.subheader("Does it fit a GPU?")
info = machine_info()
known = [g for g in info.gpus if g.memory_bytes]  # the choices and the sizes come from one list
choices = [f"{g.name} ({mb(g.memory_bytes)})" for g in known] + ["Type a size"]
pick = st.selectbox("GPU", choices, key="calc_gpu",
                    help="GPUs detected on this machine, or any size you type")
if pick == "Type a size":
    gpu_gb = st.number_input("GPU memory (GB, 10^9 bytes)", 0.1, 1000.0, 16.0, step=1.0, key="calc_gpu_gb")
    capacity = gpu_gb * 1e9
else:
    capacity = known[choices.index(pick)].memory_bytes
fits = memory.fits(t["training_bytes"], capacity)
largest = memory.max_batch(report, capacity)
verdict = (f"Training with batch {batch} needs {mb(t['training_bytes'])} of {mb(capacity)}: "
           f"{'it fits' if fits else 'it does not fit'} "
           f"(runs plan on at most {fmt.pct(memory.FIT_MARGIN, 0)} of a "
           f"device's memory; the rest is framework workspace). The largest batch that fits is {largest:,}.")
(st.success if fits else st.error)(verdict, icon=":material/check_circle:" if fits else ":material/error:")

st.markdown("**Out-of-memory remedies, computed for this model**")
remedies = pd.DataFrame(memory.remedies((h, w, c), layers, dtype, batch, optimizer))
remedies["training MB"] = remedies["training_bytes"] / memory.MB
remedies["saves MB"] = remedies["saving"] / memory.MB
remedies["fits"] = remedies["training_bytes"].map(lambda b: None if pd.isna(b) else memory.fits(b, capacity))
st.dataframe(remedies[["remedy", "training MB", "saves MB", "fits", "how"]], hide_index=True,
             key="calc_remedies",
             column_config={"training MB": st.column_config.NumberColumn(format="%.2f"),
                            "saves MB": st.column_config.NumberColumn(format="%.2f")})
st.caption("Only remedies that save memory for this model and these settings are listed "
           "(switching to SGD is not offered when SGD is already chosen).")
