"""The training loop (reproducibility, hooks, budgets, loss weights), batched augmentation
and the IDX reader."""
from __future__ import annotations

import copy
import gzip
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark.api.hooks import Hook
from benchmark.api.task import DataFormatError, DataNotFoundError
from benchmark.training.trainer import Trainer
from helpers_tiny import Recorder, cpu, fit, one_cpu_thread, tiny_task  # noqa: F401
from tasks.vision.augment import normalise, random_crop, random_hflip
from tasks.vision.fashion_mnist import DEBIAN_DIR, FILES
from tasks.vision.idx import read_idx, write_idx


@pytest.fixture(scope="module")
def tiny():
    task = tiny_task()
    return task, task.load_splits()


def test_tiny_task_shape(tiny):
    task, splits = tiny
    assert len(splits.train) == 270 and len(splits.val) == 30 and len(splits.test) == 100
    assert splits.train.x.dtype == torch.uint8 and splits.train.x.shape[1:] == (1, 28, 28)
    assert task.recipe.model == "small-cnn" and task.recipe.model_options == {"width": 8}


# --- reproducibility ------------------------------------------------------------------------


def without_timings(history):
    return [{k: v for k, v in h.items() if k != "epoch_seconds"} for h in history]


def test_same_seed_gives_bit_identical_weights_and_history(tiny):
    task, splits = tiny
    runs = []
    for _ in range(2):
        recorder = Recorder()
        model, result = fit(task, [recorder], seed=7, splits=splits, epochs=2)
        runs.append((model.state_dict(), without_timings(result.state.history), recorder))
    (w1, h1, r1), (w2, h2, r2) = runs
    assert w1.keys() == w2.keys()
    for key in w1:
        assert torch.equal(w1[key], w2[key]), key
    assert h1 == h2 and len(h1) == 2
    assert all(torch.equal(a["indices"], b["indices"]) for a, b in zip(r1.batches, r2.batches))
    assert all(torch.equal(a["losses"], b["losses"]) for a, b in zip(r1.batches, r2.batches))

    model3, result3 = fit(task, [], seed=8, splits=splits, epochs=2)
    assert not torch.equal(model3.state_dict()["head.weight"], w1["head.weight"])
    assert without_timings(result3.state.history) != h1


def test_build_model_depends_only_on_the_seed_and_leaves_global_rng_alone(tiny):
    task, splits = tiny
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = Trainer(task, splits, cpu(), seed=3).build_model()
    after = torch.rand(3)
    b = Trainer(task, splits, cpu(), seed=3).build_model()
    assert torch.equal(before, after)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# --- hooks --------------------------------------------------------------------------------


class Chooser(Hook):
    """Returns a different seeded subset every epoch."""

    def __init__(self, n: int, size: int):
        self.n, self.size, self.returned = n, size, []

    def on_epoch_start(self, state):
        g = torch.Generator().manual_seed(100 + state.epoch)
        chosen = torch.randperm(self.n, generator=g)[: self.size]
        self.returned.append(chosen.clone())
        return chosen


def test_epoch_start_indices_restrict_training_exactly(tiny):
    task, splits = tiny
    n = len(splits.train)
    chooser, recorder = Chooser(n, 100), Recorder()  # the recorder returns None: it must not reset the choice
    _, result = fit(task, [chooser, recorder], seed=0, splits=splits, epochs=3)
    assert result.active_sizes == [100, 100, 100]
    assert len(recorder.epoch_indices) == 3
    for returned, batches in zip(chooser.returned, recorder.epoch_indices):
        seen = torch.cat(batches)
        assert len(seen) == 100  # each chosen sample exactly once
        assert torch.equal(torch.sort(seen).values, torch.sort(returned).values)
        assert [len(b) for b in batches] == [64, 36]
    assert not torch.equal(torch.sort(chooser.returned[0]).values, torch.sort(chooser.returned[1]).values)
    assert result.state.sample_passes == 300 and result.state.step == 6
    assert [h["active_samples"] for h in result.state.history] == [100.0] * 3


def test_an_empty_selection_is_an_error(tiny):
    task, splits = tiny

    class Nothing(Hook):
        def on_epoch_start(self, state):
            return torch.empty(0, dtype=torch.long)

    with pytest.raises(RuntimeError, match="no training samples"):
        fit(task, [Nothing()], splits=splits, epochs=1)


class Recompute(Hook):
    """Recomputes each batch's logits on a copy of the model (augmentation off) and checks
    that logits, losses and targets are aligned with the indices."""

    def __init__(self, task, splits):
        self.task, self.splits, self.checked = task, splits, 0

    def on_batch_loss(self, state, indices, logits, losses, targets, features):
        assert not logits.requires_grad and not losses.requires_grad
        assert torch.equal(targets, self.splits.train.y[indices])
        assert torch.equal(losses, F.cross_entropy(logits.float(), targets, reduction="none"))
        shadow = copy.deepcopy(state.model)
        assert shadow.training
        with torch.no_grad():
            x = self.task.prepare_batch(self.splits.train.x[indices], train=False, generator=None)
            again = shadow(x)
        torch.testing.assert_close(again, logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            F.cross_entropy(again, self.splits.train.y[indices], reduction="none"), losses, rtol=1e-5, atol=1e-5
        )
        self.checked += 1


def test_batch_losses_are_per_sample_cross_entropy_aligned_with_indices():
    task = tiny_task(augment=False)
    splits = task.load_splits()
    check = Recompute(task, splits)
    fit(task, [Chooser(len(splits.train), 150), check], seed=0, splits=splits, epochs=2)
    assert check.checked == 6


def test_batch_losses_with_augmentation_are_cross_entropy_of_the_logits(tiny):
    task, splits = tiny
    recorder = Recorder()
    fit(task, [recorder], seed=0, splits=splits, epochs=1)
    assert len(recorder.batches) == 5
    for b in recorder.batches:
        assert b["logits"].shape == (len(b["indices"]), 10)
        assert torch.equal(b["targets"], splits.train.y[b["indices"]])
        assert torch.equal(b["losses"], F.cross_entropy(b["logits"], b["targets"], reduction="none"))


def test_features_are_passed_when_a_hook_wants_them(tiny):
    task, splits = tiny

    class Features(Hook):
        wants_features = True

        def __init__(self):
            self.seen = 0

        def on_batch_loss(self, state, indices, logits, losses, targets, features):
            assert features is not None and features.shape == (len(indices), 128)
            torch.testing.assert_close(state.model.head(features), logits)
            self.seen += 1

    features = Features()
    fit(task, [features, Recorder()], seed=0, splits=splits, epochs=1)
    assert features.seen == 5


def test_step_end_sees_gradients_of_every_parameter(tiny):
    task, splits = tiny

    class Grads(Hook):
        def __init__(self):
            self.calls = []

        def on_step_end(self, state):
            params = list(state.model.parameters())
            assert all(p.grad is not None for p in params)
            assert any(bool(p.grad.abs().sum() > 0) for p in params)
            self.calls.append(state.step)

    grads = Grads()
    fit(task, [grads], seed=0, splits=splits, epochs=1)
    assert grads.calls == [1, 2, 3, 4, 5]  # the step counter is already advanced


def test_hooks_are_called_in_the_documented_order(tiny):
    task, splits = tiny
    log = []

    class Named(Hook):
        def __init__(self, name):
            self.name = name

        def on_run_start(self, state):
            log.append((self.name, "run_start"))

        def on_epoch_start(self, state):
            log.append((self.name, "epoch_start"))

        def on_batch_loss(self, state, indices, logits, losses, targets, features):
            log.append((self.name, "batch_loss"))

        def on_step_end(self, state):
            log.append((self.name, "step_end"))

        def on_epoch_end(self, state, metrics):
            # evaluation has run and the history holds this epoch
            assert {"train_loss", "val_accuracy", "val_loss", "lr"} <= set(metrics)
            assert state.history[-1] is metrics and len(state.history) == state.epoch + 1
            log.append((self.name, "epoch_end"))

        def on_run_end(self, state):
            log.append((self.name, "run_end"))

    _, result = fit(task, [Named("a"), Named("b")], seed=0, splits=splits, epochs=2)
    both = lambda event: [("a", event), ("b", event)]  # noqa: E731
    epoch = both("epoch_start") + (both("batch_loss") + both("step_end")) * 5 + both("epoch_end")
    assert log == both("run_start") + epoch * 2 + both("run_end")
    assert result.state.step == 10


# --- budgets ------------------------------------------------------------------------------


class Half(Hook):
    def on_epoch_start(self, state):
        return torch.arange(0, state.n_train, 2)  # 135 of 270


def test_step_budget_matches_the_full_run_and_epoch_budget_halves_it(tiny):
    task, splits = tiny
    _, full = fit(task, [], seed=0, splits=splits, epochs=2)
    assert full.state.step == full.state.total_steps == 2 * math.ceil(270 / 64) == 10
    assert full.state.sample_passes == 540

    _, by_epochs = fit(task, [Half()], seed=0, splits=splits, epochs=2, budget="epochs")
    assert by_epochs.state.step == 2 * math.ceil(135 / 64) == 6
    assert len(by_epochs.state.history) == 2 and by_epochs.state.sample_passes == 270

    _, by_steps = fit(task, [Half()], seed=0, splits=splits, epochs=2, budget="steps")
    assert by_steps.state.step == full.state.step == 10
    assert len(by_steps.state.history) == math.ceil(10 / 3)  # 3 steps per half epoch
    assert by_steps.state.sample_passes == 3 * 135 + 64
    assert by_steps.active_sizes == [135] * 4
    with pytest.raises(ValueError, match="budget"):
        Trainer(task, splits, cpu(), seed=0, budget="tokens")


# --- failures and loss weights -----------------------------------------------------------------


def test_nan_loss_raises_floating_point_error(tiny):
    task, splits = tiny

    class Poison(Hook):
        def on_run_start(self, state):
            with torch.no_grad():
                state.model.head.bias.fill_(float("nan"))

    with pytest.raises(FloatingPointError, match="non-finite"):
        fit(task, [Poison()], splits=splits, epochs=1)

    class NanWeights(Hook):
        def on_batch_loss(self, state, indices, logits, losses, targets, features):
            w = torch.ones(len(indices))
            w[0] = float("nan")
            return w

    with pytest.raises(FloatingPointError):
        fit(task, [NanWeights()], splits=splits, epochs=1)


class Weights(Hook):
    def __init__(self, value):
        self.value = value

    def on_batch_loss(self, state, indices, logits, losses, targets, features):
        return torch.full((len(indices),), float(self.value))


class OneBatch(Hook):
    def on_epoch_start(self, state):
        return torch.arange(64)


class GradCopy(Hook):
    def on_step_end(self, state):
        self.grads = {n: p.grad.detach().clone() for n, p in state.model.named_parameters()}


def one_step(task, splits, hooks):
    """One plain-SGD step on the first 64 samples: (parameter change, gradients)."""
    grads = GradCopy()
    trainer = Trainer(task, splits, cpu(), seed=0, hooks=[OneBatch(), *hooks, grads], epochs=1,
                      evaluate_each_epoch=False)
    model = trainer.build_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = trainer.fit(model)
    assert result.state.step == 1
    return {n: p.detach() - before[n] for n, p in model.named_parameters()}, grads.grads


def test_loss_weights_scale_the_loss():
    task = tiny_task(momentum=0.0, weight_decay=0.0, schedule="constant")
    splits = task.load_splits()
    zero, zero_grads = one_step(task, splits, [Weights(0.0)])
    assert all(torch.count_nonzero(d) == 0 for d in zero.values())  # parameters unchanged
    assert all(torch.count_nonzero(g) == 0 for g in zero_grads.values())
    plain, plain_grads = one_step(task, splits, [])
    assert any(torch.count_nonzero(d) > 0 for d in plain.values())
    for name, d in plain.items():  # plain SGD: the change is -lr * grad
        torch.testing.assert_close(d, -task.recipe.lr * plain_grads[name], rtol=1e-3, atol=1e-6)
    _, double = one_step(task, splits, [Weights(2.0)])
    for name in plain_grads:
        torch.testing.assert_close(double[name], 2 * plain_grads[name], rtol=1e-5, atol=1e-8)
    # weights of several hooks multiply
    _, product = one_step(task, splits, [Weights(4.0), Weights(0.25)])
    for name in plain_grads:
        torch.testing.assert_close(product[name], plain_grads[name], rtol=1e-5, atol=1e-8)


def test_one_weighted_sample_trains_only_on_that_sample():
    """All weight on one sample: the gradient is that sample's loss gradient (batch norm couples
    the batch, so the reference is computed on the same batch, in train mode)."""
    task = tiny_task(momentum=0.0, weight_decay=0.0, schedule="constant", augment=False)
    splits = task.load_splits()

    class OnlyOne(Hook):
        def on_batch_loss(self, state, indices, logits, losses, targets, features):
            w = torch.zeros(len(indices))
            w[indices == 5] = float(len(indices))
            return w

    _, grads = one_step(task, splits, [OnlyOne()])
    trainer = Trainer(task, splits, cpu(), seed=0)
    model = trainer.build_model()
    model.train()
    order = torch.randperm(64, generator=torch.Generator().manual_seed(1))  # the batch order does not matter
    x = task.prepare_batch(splits.train.x[order], train=False, generator=None)
    losses = F.cross_entropy(model(x), splits.train.y[order], reduction="none")
    losses[order == 5].sum().backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-4, atol=1e-7)


# --- batched augmentation -----------------------------------------------------------------------


@pytest.mark.parametrize("padding", (1, 2, 4))
def test_random_crop_is_a_reflect_padded_crop_at_a_random_offset(padding):
    g = torch.Generator().manual_seed(padding)
    x = torch.randn(64, 3, 9, 8, generator=g)
    out = random_crop(x, padding, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = F.pad(x, (padding,) * 4, mode="reflect")
    offsets = []
    for i in range(len(x)):
        matches = [
            (dy, dx)
            for dy in range(2 * padding + 1)
            for dx in range(2 * padding + 1)
            if torch.equal(out[i], padded[i, :, dy : dy + 9, dx : dx + 8])
        ]
        assert len(matches) == 1, (i, matches)
        offsets.append(matches[0])
    dys, dxs = {o[0] for o in offsets}, {o[1] for o in offsets}
    assert dys == dxs == set(range(2 * padding + 1))  # every offset occurs in 64 images
    assert any(dy != dx for dy, dx in offsets)  # the two offsets are drawn independently
    again = random_crop(x, padding, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    assert torch.equal(random_crop(x, 0, torch.Generator().manual_seed(0)), x)


def test_reflect_padding_reflects_without_repeating_the_edge():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    out = random_crop(x, 1, torch.Generator().manual_seed(0))
    assert padded[0, 0, 0, 1:5].tolist() == x[0, 0, 1].tolist()
    assert any(torch.equal(out[0, 0], padded[0, 0, dy : dy + 4, dx : dx + 4]) for dy in range(3) for dx in range(3))


def test_hflip_flips_exactly_the_selected_images():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, 5, 6, generator=g)
    gen = torch.Generator().manual_seed(9)
    predicted = torch.rand(64, generator=torch.Generator().manual_seed(9)) < 0.5  # the draws gen will make
    out = random_hflip(x, gen)
    assert out.shape == x.shape
    flipped = []
    for i in range(64):
        same, mirrored = torch.equal(out[i], x[i]), torch.equal(out[i], x[i].flip(-1))
        assert same != mirrored, i  # exactly one of the two
        flipped.append(mirrored)
    assert flipped == predicted.tolist()
    assert 16 < sum(flipped) < 48


def test_prepare_batch_normalises_and_augments_only_when_training(tiny):
    task, splits = tiny
    x = splits.train.x[:32]
    expected = (x.float() / 255.0 - task.mean[0]) / task.std[0]
    torch.testing.assert_close(task.prepare_batch(x, train=False, generator=None), expected)
    torch.testing.assert_close(normalise(x, task.mean, task.std), expected)
    augmented = task.prepare_batch(x, train=True, generator=torch.Generator().manual_seed(1))
    assert augmented.shape == expected.shape and not torch.equal(augmented, expected)


# --- IDX reader ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ("images-idx3-ubyte", "images-idx3-ubyte.gz"))
@pytest.mark.parametrize("shape", ((5, 4, 3), (7,), (2, 1, 28, 28)))
def test_idx_round_trip(tmp_path, name, shape):
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / name
    write_idx(path, array)
    raw = path.read_bytes()
    if name.endswith(".gz"):
        assert raw[:2] == b"\x1f\x8b"
        raw = gzip.decompress(raw)
    assert raw[:4] == bytes([0, 0, 8, len(shape)])
    assert struct.unpack(f">{len(shape)}i", raw[4 : 4 + 4 * len(shape)]) == shape
    back = read_idx(path)
    assert back.dtype == np.uint8 and back.shape == shape
    np.testing.assert_array_equal(back, array)


def test_idx_reads_big_endian_types_in_native_order(tmp_path):
    values = np.array([[1, -2, 70000], [3, 2**30, -5]], dtype=">i4")
    path = tmp_path / "ints-idx2-int"
    path.write_bytes(bytes([0, 0, 0x0C, 2]) + struct.pack(">2i", 2, 3) + values.tobytes())
    back = read_idx(path)
    assert back.dtype == np.dtype("int32") and back.dtype.isnative
    np.testing.assert_array_equal(back, values.astype(np.int32))


@pytest.mark.parametrize("gz", (False, True))
def test_truncated_idx_raises_data_format_error_naming_the_file(tmp_path, gz):
    array = np.random.default_rng(1).integers(0, 256, (10, 28, 28), dtype=np.uint8)
    good = tmp_path / ("good.gz" if gz else "good")
    write_idx(good, array)
    cut = tmp_path / ("cut-idx3-ubyte.gz" if gz else "cut-idx3-ubyte")
    if gz:
        cut.write_bytes(good.read_bytes()[:-100])
    else:
        cut.write_bytes(good.read_bytes()[:-1])
    with pytest.raises(DataFormatError) as info:
        read_idx(cut)
    assert str(cut) in str(info.value)
    # a header cut short
    short = tmp_path / "short-idx3-ubyte"
    short.write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 10]))
    with pytest.raises(DataFormatError, match="short-idx3-ubyte"):
        read_idx(short)
    # too much data is an error too
    long = tmp_path / "long-idx3-ubyte"
    long.write_bytes(gzip.decompress(good.read_bytes()) + b"\0" if gz else good.read_bytes() + b"\0")
    with pytest.raises(DataFormatError, match="long-idx3-ubyte"):
        read_idx(long)


def test_bad_magic_raises_data_format_error(tmp_path):
    for name, content in (("a-idx", b"\x01\x00\x08\x01\x00\x00\x00\x01\x05"),
                          ("b-idx", b"\x00\x00\x42\x01\x00\x00\x00\x01\x05"),  # unknown type code
                          ("c-idx", b"\x00\x00")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DataFormatError, match=name):
            read_idx(path)
    not_gzip = tmp_path / "plain.gz"
    not_gzip.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 1, 5]))
    with pytest.raises(DataFormatError, match="plain.gz"):
        read_idx(not_gzip)


def test_corrupt_gzip_stream_raises_data_format_error(tmp_path):
    path = tmp_path / "corrupt-idx3-ubyte.gz"
    # a valid gzip header, then a deflate block of the reserved type 11: "invalid block type"
    path.write_bytes(bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF]) + b"\xff" * 20)
    with pytest.raises(DataFormatError, match="corrupt-idx3-ubyte.gz"):
        read_idx(path)


def test_missing_idx_raises_data_not_found(tmp_path):
    with pytest.raises(DataNotFoundError, match="nothing-here"):
        read_idx(tmp_path / "nothing-here.gz")
    assert issubclass(DataNotFoundError, FileNotFoundError)


@pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_real_fashion_mnist_files():
    directory = Path(DEBIAN_DIR)
    train_x = read_idx(directory / FILES["train_images"])
    train_y = read_idx(directory / FILES["train_labels"])
    test_x = read_idx(directory / FILES["test_images"])
    test_y = read_idx(directory / FILES["test_labels"])
    assert train_x.shape == (60000, 28, 28) and train_x.dtype == np.uint8
    assert train_y.shape == (60000,) and test_x.shape == (10000, 28, 28) and test_y.shape == (10000,)
    assert np.bincount(train_y, minlength=10).tolist() == [6000] * 10
    assert np.bincount(test_y, minlength=10).tolist() == [1000] * 10
    assert train_x.max() == 255 and train_x.min() == 0
