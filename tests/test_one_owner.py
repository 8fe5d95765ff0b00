"""Facts that had two owners and drifted apart: now each has one, and these tests hold them together."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core import config, machine
from core.inference import UNSURE_BELOW, unsure
from core.learn import calculator
from core.learn.calculator import Layer


def test_gpu_memory_is_converted_from_mib_once():
    """nvidia-smi reports MiB; the Train page multiplied by 10^6 and the Calculator by 2^20."""
    gpu = machine.GPU("H100", memory_mb=81_559)
    assert gpu.memory_bytes == 81_559 * 2**20
    assert machine.GPU("unknown").memory_bytes is None
    info = machine.MachineInfo("3.11", "2.21", "3.15", 2, gpus=[machine.GPU("a", 1000), gpu])
    assert info.smallest_gpu_bytes() == 1000 * 2**20


def test_the_largest_batch_that_fits_fits_by_the_same_rule():
    """The Calculator planned on 100% of the GPU while the Train page kept a 15% margin."""
    layers = [Layer("Conv2D", filters=64), Layer("Conv2D", filters=64)]
    report = calculator.analyze((64, 64, 3), layers, batch=8)
    capacity = 2e8
    largest = calculator.max_batch(report, capacity)
    at = lambda b: calculator.analyze((64, 64, 3), layers, batch=b).totals  # noqa: E731
    assert calculator.fits(at(largest)["training_bytes"], capacity) is True
    assert calculator.fits(at(largest + 1)["training_bytes"], capacity) is False


def test_one_not_sure_threshold_for_digits_and_photos():
    """Draw said "not sure" below 60%, Classify below 50%."""
    assert unsure(UNSURE_BELOW - 0.01) and not unsure(UNSURE_BELOW)
    pages = Path(config.PROJECT_ROOT, "app_pages")
    assert not [p.name for p in pages.glob("*.py") if "UNSURE_BELOW =" in p.read_text()]


def test_calculator_picks_the_gpu_the_user_chose(isolated, monkeypatch, request):
    """The Calculator indexed the unfiltered GPU list with an index from the filtered one."""
    gpus = [machine.GPU("No-size GPU"), machine.GPU("Big GPU", memory_mb=16_000)]
    from ui import common

    real = machine.machine_info()
    monkeypatch.setattr(machine, "machine_info", lambda: machine.MachineInfo(
        real.python, real.tensorflow, real.keras, real.cpu_count, gpus=gpus))
    common.machine_info.clear()  # the pages cache it per process: forget it now and after the test
    request.addfinalizer(common.machine_info.clear)
    at = AppTest.from_file(str(config.PROJECT_ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("app_pages/calculator.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert at.selectbox(key="calc_gpu").options[0].startswith("Big GPU")
    verdicts = [m.value for m in [*at.success, *at.error] if "Training with batch" in m.value]
    assert verdicts and f"{16_000 * 2**20 / 1e6:,.2f} MB" in verdicts[0]


def test_mnist_file_names_and_image_suffixes_have_one_owner():
    from core.data import mnist, photo, zipimport

    assert machine.MNIST_FILES == tuple(mnist.FILES.values())
    assert zipimport.IMAGE_SUFFIXES is photo.IMAGE_SUFFIXES and machine.IMAGE_SUFFIXES is photo.IMAGE_SUFFIXES


def test_the_pages_split_sizes_are_the_splits_the_runs_make(tmp_path):
    """The Train page computed 70%/90% training shares itself; core now says what the split will be."""
    from core.data import folders, mnist
    from tests.fixtures.images import make_shapes

    make_shapes(tmp_path / "set", per_class=23, size=16)
    scanned = folders.scan(tmp_path / "set", min_per_class=0)
    split = folders.split(scanned, 0.15, 0.2, seed=1, limit_per_class=21)
    made = {k: len(split[k]) for k in ("train", "val", "test")}
    assert folders.split_sizes(scanned.counts, 0.15, 0.2, 21) == made
    assert mnist.split_sizes(mnist.TRAIN_IMAGES, 0.1) == (54_000, 6_000)
    assert mnist.split_sizes(mnist.TRAIN_IMAGES, 0.1, limit=400) == (360, 40)
    assert mnist.split_sizes(mnist.TRAIN_IMAGES, 0.0) == (60_000, 0)


def test_mixed_precision_is_resolved_by_one_rule():
    from core.training.devices import resolve_mixed

    cpu = machine.MachineInfo("3.11", "2.21", "3.15", 2)
    gpu = machine.MachineInfo("3.11", "2.21", "3.15", 2, gpus=[machine.GPU("H100", 80_000, "9.0")],
                              mixed_precision=True)
    assert [resolve_mixed(c, cpu) for c in ("auto", "on", "off")] == [False, False, False]
    assert [resolve_mixed(c, gpu) for c in ("auto", "on", "off")] == [True, True, False]


def test_an_upload_name_is_a_slug():
    """The page built the unpack folder from the client's file name (``../flowers/evil.zip``)."""
    from core.data import uploads

    assert uploads.slug("../flowers/evil.zip") == "evil"
    assert uploads.slug("/tmp/x y!.zip") == "x-y"
    assert uploads.slug("..") == "upload"
