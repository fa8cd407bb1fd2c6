"""Benchmark: where the time goes, old against new, in one run (results/bench-speed.md).

Rows: global mask selection (the previous stable argsort on a host copy against the
linear-time threshold selection) at SmolLM2-135M's 106 M prunable weights and at 30 M /
10 M / 1 M; one SEVEN window step (update + ranking + selection + mask install) and
``SevenScore.update`` alone at 106 M; the Fashion-MNIST cpu-profile training step in NCHW
against channels-last; every other model's training step in its previous layout against its
current one (``formats``: CWRU's CNN1d in NCL against the rows layout, ResNet-18); and the
start of ``prunebench list`` / ``validate`` / ``leaderboard`` (on a copy of the committed
81-cell store) at a baseline revision against this tree. ``--only sft`` (not in the default
run: minutes per run) times the rt-instruct SFT step dense against SEVEN updating after every
step and extrapolates the first epoch of the rt-instruct-cpu sweep.

Every comparison alternates old and new (ABBA) and reports medians, in wall and in CPU
seconds; every row checks that old and new give the same masks / state / output. Peak memory
is measured in a fresh subprocess per figure (peak RSS minus the RSS before the measured call).

    python scripts/bench_speed.py [--repeats 3] [--baseline origin/main] [--only ...]
    python scripts/bench_speed.py --only sft [--sft-steps 6] [--sft-repeats 2] --out results/bench-seven-sft.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

from benchmark.api.masks import Masker, count_removed, global_masks
from methods.model.seven import SevenScore, keep_fraction

ROOT = Path(__file__).resolve().parent.parent


# --- the previous implementations (as on main before issue 21) -------------------------------

def old_lowest_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    flat = scores.flatten()
    keep = torch.ones_like(flat, dtype=torch.bool)
    if k > 0:
        keep[torch.argsort(flat, stable=True)[:k]] = False
    return keep.view_as(scores)


def old_global_masks(scores: dict[str, torch.Tensor], ratio: float) -> dict[str, torch.Tensor]:
    names = list(scores)
    flat = torch.cat([scores[n].detach().flatten().float().cpu() for n in names])
    keep = old_lowest_k_mask(flat, count_removed(ratio, flat.numel()))
    out, offset = {}, 0
    for n in names:
        size = scores[n].numel()
        out[n] = keep[offset : offset + size].view_as(scores[n]).to(scores[n].device)
        offset += size
    return out


class OldSevenScore:
    def __init__(self, weights, alpha1, alpha2, eps=1e-9):
        self.weights, self.alpha1, self.alpha2, self.eps = weights, alpha1, alpha2, eps
        self.m = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}
        self.v = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}
        self.importance = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}

    @torch.no_grad()
    def update(self, t, masks):
        m_correction = 1.0 - self.alpha1 ** (t + 1)
        v_correction = 1.0 - self.alpha2 ** (t + 1)
        for name, weight in self.weights.items():
            grad = weight.grad
            if grad is None:
                continue
            grad = grad.float()
            magnitude = grad.abs()
            self.m[name].mul_(self.alpha1).add_(magnitude, alpha=1.0 - self.alpha1)
            self.v[name].mul_(self.alpha2).add_(grad * grad, alpha=1.0 - self.alpha2)
            m_hat = self.m[name] / m_correction
            v_hat = (self.v[name] / v_correction).sqrt() + self.eps
            self.importance[name].add_((weight.float() * magnitude * m_hat / v_hat).abs())
            mask = masks.get(name)
            if mask is not None:
                self.importance[name].mul_(mask)

    def ranking(self, masks):
        return {n: torch.where(masks[n], s, torch.full_like(s, -1.0)) if n in masks else s
                for n, s in self.importance.items()}


# --- shapes and helpers ------------------------------------------------------------------------

def smollm2_shapes(total: int) -> list[tuple[int, int]]:
    """SmolLM2-135M's prunable matrices in model order (30 layers of q, k, v, o, gate, up,
    down: 106,168,320 weights), cut after the first ``total`` weights."""
    layer = [(576, 576), (192, 576), (192, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)]
    shapes, left = [], total
    for shape in layer * 30:
        size = shape[0] * shape[1]
        if left <= 0:
            break
        if size > left:
            shape = (left // shape[1], shape[1]) if left >= shape[1] else (1, left)
            size = shape[0] * shape[1]
        shapes.append(shape)
        left -= size
    return shapes


def magnitude_scores(total: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"w{i}": torch.randn(s, generator=g).abs_() for i, s in enumerate(smollm2_shapes(total))}


def same_masks(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(torch.equal(a[n], b[n]) for n in a)


class Seconds(float):
    """Wall seconds of one call, carrying the CPU seconds it used (``cpu``: this process's
    threads and the subprocesses it waited for): time spent descheduled is not in it, though an
    OpenMP thread spinning at a barrier for its descheduled partner is."""

    def __new__(cls, wall: float, cpu: float):
        out = super().__new__(cls, wall)
        out.cpu = cpu
        return out


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def interleaved(old, new, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of ``old()`` and ``new()``, alternated ABBA so that drift hits both alike."""
    times = {"old": [], "new": []}
    for r in range(repeats):
        for which in (("old", "new") if r % 2 == 0 else ("new", "old")):
            fn = old if which == "old" else new
            t0, c0 = time.perf_counter(), cpu_seconds()
            fn()
            times[which].append(Seconds(time.perf_counter() - t0, cpu_seconds() - c0))
    return times["old"], times["new"]


def row(what: str, old: list[float], new: list[float], check: str, unit: str = "s") -> dict:
    o, n = statistics.median(old), statistics.median(new)
    out = {"what": what, "old": o, "new": n, "ratio": o / n, "min_ratio": min(old) / min(new), "check": check,
           "unit": unit, "spread": f"{min(old):.3g}-{max(old):.3g} / {min(new):.3g}-{max(new):.3g}",
           "old_s": old, "new_s": new}
    if all(isinstance(t, Seconds) for t in (*old, *new)):
        out["old_cpu_s"], out["new_cpu_s"] = [t.cpu for t in old], [t.cpu for t in new]
        out["cpu_ratio"] = statistics.median(out["old_cpu_s"]) / statistics.median(out["new_cpu_s"])
    return out


# --- rows ---------------------------------------------------------------------------------------

def selection_rows(sizes: list[int], repeats: int) -> list[dict]:
    rows = []
    for total in sizes:
        scores = magnitude_scores(total)
        results = {}
        old_t, new_t = interleaved(lambda: results.__setitem__("old", old_global_masks(scores, 0.5)),
                                   lambda: results.__setitem__("new", global_masks(scores, 0.5)), repeats)
        check = "identical masks" if same_masks(results["old"], results["new"]) else "MASKS DIFFER"
        rows.append(row(f"global mask selection, {total / 1e6:.0f} M weights, ratio 0.5", old_t, new_t, check))
        print(rows[-1], flush=True)
        del scores, results
    return rows


def seven_setup(total: int):
    g = torch.Generator().manual_seed(1)
    shapes = smollm2_shapes(total)
    grads = [torch.randn(s, generator=g) * 1e-3 for s in shapes]
    def weights():
        g2 = torch.Generator().manual_seed(2)
        ws = {f"w{i}": torch.nn.Parameter(torch.randn(s, generator=g2) * 0.02) for i, s in enumerate(shapes)}
        for w, grad in zip(ws.values(), grads):
            w.grad = grad  # shared: both sides read the same gradients
        return ws
    return weights


def seven_rows(total: int, repeats: int, window: int = 20, ratio: float = 0.5) -> list[dict]:
    make_weights = seven_setup(total)
    sides = {}
    for which, cls in (("old", OldSevenScore), ("new", SevenScore)):
        weights = make_weights()
        sides[which] = {"weights": weights, "score": cls(weights, 0.8, 0.9), "masker": Masker(weights), "t": 0}

    def window_step(which):
        side = sides[which]
        score, masker, t = side["score"], side["masker"], side["t"]
        masks = masker.masks or {n: torch.ones_like(w, dtype=torch.bool) for n, w in side["weights"].items()}
        score.update(t, masks)
        sparsity = 1.0 - keep_fraction(t, window, ratio)
        if which == "old":
            masker.set(old_global_masks(score.ranking(masks), sparsity))
        else:
            ranking, flat = score.ranking(masks)
            masker.set(global_masks(ranking, sparsity, flat=flat))
        side["t"] += 1

    old_t, new_t = interleaved(lambda: window_step("old"), lambda: window_step("new"), repeats)
    same = same_masks(sides["old"]["masker"].masks, sides["new"]["masker"].masks) and all(
        torch.equal(sides["old"]["score"].importance[n], sides["new"]["score"].importance[n])
        for n in sides["old"]["score"].importance)
    rows = [row(f"one SEVEN window step (update + ranking + selection + masks), {total / 1e6:.0f} M weights",
                old_t, new_t, "identical masks and importance" if same else "DIFFER")]
    print(rows[-1], flush=True)

    def update(which):
        side = sides[which]
        side["score"].update(side["t"], side["masker"].masks)

    old_t, new_t = interleaved(lambda: update("old"), lambda: update("new"), repeats)
    bit = all(torch.equal(getattr(sides["old"]["score"], s)[n], getattr(sides["new"]["score"], s)[n])
              for s in ("m", "v", "importance") for n in sides["old"]["score"].importance)
    rows.append(row(f"SevenScore.update, {total / 1e6:.0f} M weights", old_t, new_t,
                    "bit-identical m, v, importance" if bit else "DIFFER"))
    print(rows[-1], flush=True)
    return rows


def peak_memory_probe(kind: str, total: int) -> float:
    """In a fresh process: MB of peak RSS added by one call of ``kind`` (run with --probe)."""
    out = subprocess.run([sys.executable, __file__, "--probe", kind, str(total)], capture_output=True, text=True,
                         cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return float(out.stdout.strip().splitlines()[-1])


def _status_mb(field: str) -> float:
    # VmHWM (peak RSS) is reset by exec; ru_maxrss would carry the forking parent's peak
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def probe(kind: str, total: int) -> None:
    if kind.startswith("select-"):
        g = torch.Generator().manual_seed(0)
        scores = {f"w{i}": torch.rand(s, generator=g) for i, s in enumerate(smollm2_shapes(total))}
        before = _status_mb("VmRSS")
        (old_global_masks if kind == "select-old" else global_masks)(scores, 0.5)
    else:  # seven-old / seven-new: the state and one window step over dense training's weights + grads
        g = torch.Generator().manual_seed(0)
        weights = {f"w{i}": torch.nn.Parameter(torch.rand(s, generator=g)) for i, s in enumerate(smollm2_shapes(total))}
        for w in weights.values():
            w.grad = torch.rand(w.shape, generator=g)
        before = _status_mb("VmRSS")
        masker = Masker(weights)
        ones = {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
        if kind == "seven-old":
            score = OldSevenScore(weights, 0.8, 0.9)
            score.update(0, ones)
            masker.set(old_global_masks(score.ranking(ones), 0.1))
        else:
            score = SevenScore(weights, 0.8, 0.9)
            score.update(0, ones)
            ranking, flat = score.ranking(ones)
            masker.set(global_masks(ranking, 0.1, flat=flat))
    print(_status_mb("VmHWM") - before)


# --- SEVEN on the SFT task (rt-instruct, SmolLM2-135M, cpu profile) -----------------------------

SFT_FIRST_EPOCH_STEPS, SFT_FIRST_EPOCH_UPDATES = 32, 25  # the cpu profile: 512 records / 16; window 7..38


def sft_probe(kind: str, steps: int) -> None:
    """In a fresh process: one epoch of ``steps`` optimizer steps of the rt-instruct cpu profile,
    dense (``sft-dense``) or with SEVEN updating after every step (``sft-seven``: window over
    the whole run). Prints seconds per step and the peak RSS added by training, in MB."""
    from benchmark.api.registry import get_task
    from benchmark.training.trainer import Trainer
    from methods.model.seven import Seven

    task = get_task("rt-instruct")("cpu", train_limit=steps * 16, epochs=1)
    splits = task.load_splits()
    hooks = [Seven(0.5, 0, start=0.0, length=1.0)] if kind == "sft-seven" else []
    trainer = Trainer(task, splits, torch.device("cpu"), seed=0, hooks=hooks, evaluate_each_epoch=False)
    model = trainer.build_model()
    before, cpu = _status_mb("VmRSS"), time.process_time()
    result = trainer.fit(model)
    cpu = time.process_time() - cpu
    updates = int(hooks[0].summary()["seven_updates"]) if hooks else 0
    print(json.dumps({"step_s": result.state.history[0]["epoch_seconds"] / steps, "cpu_step_s": cpu / steps,
                      "updates": updates, "peak_mb": _status_mb("VmHWM") - before, "steps": result.state.step}))


def sft_rows(repeats: int, steps: int) -> tuple[list[dict], dict]:
    """Dense against SEVEN-in-every-step on the real SFT task, one fresh process per run (ABBA),
    and the first epoch of the rt-instruct-cpu sweep extrapolated from the per-step costs: 32
    steps, 25 of them SEVEN window steps (start 0.1, length 0.5 of 64 steps)."""
    runs = {"old": [], "new": []}  # old: dense, new: SEVEN (the row's "old / new" is dense / SEVEN)

    def run(kind):
        out = subprocess.run([sys.executable, __file__, "--probe", kind, str(steps)], capture_output=True,
                             text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=3600)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-3000:])
        runs["old" if kind == "sft-dense" else "new"].append(json.loads(out.stdout.strip().splitlines()[-1]))

    interleaved(lambda: run("sft-dense"), lambda: run("sft-seven"), repeats)
    assert all(r["updates"] == r["steps"] == steps for r in runs["new"]), runs["new"]
    rows = []
    for key, clock in (("step_s", "wall"), ("cpu_step_s", "CPU (both threads)")):
        dense, seven = [r[key] for r in runs["old"]], [r[key] for r in runs["new"]]
        r = row(f"SFT step, rt-instruct cpu profile (SmolLM2-135M, batch 16), {steps} steps, {clock} time: dense "
                "vs SEVEN updating after every step", dense, seven, f"SEVEN updates: {steps} of {steps} steps")
        r["unit"] = "s/step"
        dense_step, seven_step = statistics.median(dense), statistics.median(seven)
        n, u = SFT_FIRST_EPOCH_STEPS, SFT_FIRST_EPOCH_UPDATES
        r["first_epoch_ratio"] = (n * dense_step + u * (seven_step - dense_step)) / (n * dense_step)
        r["note"] = (f"first epoch of the rt-instruct-cpu sweep extrapolated, {u} window steps of {n}: "
                     f"SEVEN / dense = {r['first_epoch_ratio']:.2f}")
        rows.append(r)
    memory = {"SFT training, rt-instruct cpu profile (dense vs SEVEN)":
              (statistics.median(x["peak_mb"] for x in runs["old"]),
               statistics.median(x["peak_mb"] for x in runs["new"]))}
    print(rows, memory, flush=True)
    return rows, memory


def fashion_rows(repeats: int, steps: int) -> list[dict]:
    """The Fashion-MNIST cpu-profile step through the real trainer on the real data: ``steps``
    steps (one epoch over ``steps`` batches), the model in NCHW against channels-last."""
    from benchmark.api.registry import get_task
    from benchmark.training.trainer import Trainer
    from tasks.vision import models

    fast_formats = dict(models.MEMORY_FORMATS)
    task = get_task("fashion-mnist")("cpu", train_limit=steps * 128)
    splits = task.load_splits()
    finals = {}

    def epoch(which):
        models.MEMORY_FORMATS.clear()
        models.MEMORY_FORMATS.update(fast_formats if which == "new" else {})
        trainer = Trainer(task, splits, torch.device("cpu"), seed=0, epochs=1, evaluate_each_epoch=False)
        model = trainer.build_model()
        trainer.fit(model)
        finals[which] = trainer.predict(model, splits.test)

    old_t, new_t = interleaved(lambda: epoch("old"), lambda: epoch("new"), repeats)
    models.MEMORY_FORMATS.update(fast_formats)
    agree = float((finals["old"].argmax(1) == finals["new"].argmax(1)).float().mean())
    diff = float((finals["old"] - finals["new"]).abs().max())
    rows = [row(f"Fashion-MNIST cpu profile, {steps} training steps (batch 128), NCHW vs channels-last",
                old_t, new_t, f"test predictions agree on {agree:.1%}, max logit difference {diff:.1e} "
                "(kernels differ in summation order)")]
    n_full = 60000
    per_epoch = [t * (n_full / (steps * 128)) for t in (rows[0]["old"], rows[0]["new"])]
    rows[0]["note"] = f"full 60k epoch, extrapolated: {per_epoch[0]:.0f} s vs {per_epoch[1]:.0f} s"
    print(rows[-1], flush=True)
    return rows


def format_rows(repeats: int) -> list[dict]:
    """Training steps of each model not covered above, in its previous layout (NCHW / NCL)
    against the alternative (tasks.*.models.MEMORY_FORMATS names the one used): the same seed gives the
    same initial weights in both, and both are trained alike from them."""
    from tasks.cwru.models import CNN1d
    from tasks.vision.models import build_image_model, in_memory_format

    def build(name, memory_format):
        torch.manual_seed(0)
        if name == "cnn1d":
            return CNN1d(10, memory_format=memory_format)
        return in_memory_format(build_image_model(name, 3, 10, image_size=32), memory_format)

    cases = {  # name: (input batch, steps per timing, what)
        "cnn1d": (torch.randn(128, 1, 2048), 10, "CWRU CNN1d, 10 training steps (batch 128, 2048 samples): NCL Conv1d "
                  "vs the rows layout (the same Conv1d parameters run as 2-D kernels over [N, C, 1, L], channels-last)"),
        "resnet18": (torch.randn(32, 3, 32, 32), 2, "CIFAR ResNet-18, 2 training steps (batch 32, 32x32): NCHW vs "
                     "channels-last"),
    }
    rows = []
    for name, (x, steps, what) in cases.items():
        y = torch.randint(0, 10, (len(x),), generator=torch.Generator().manual_seed(1))
        models = {which: build(name, fmt) for which, fmt in (("old", torch.contiguous_format),
                                                            ("new", torch.channels_last))}
        same_init = all(torch.equal(a, b) for a, b in zip(models["old"].state_dict().values(),
                                                          models["new"].state_dict().values()))
        optimizers = {w: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for w, m in models.items()}

        def train(which):
            model, optimizer = models[which], optimizers[which]
            for _ in range(steps):
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()

        old_t, new_t = interleaved(lambda: train("old"), lambda: train("new"), repeats)
        drift = max(float((a - b).abs().max()) for a, b in zip(models["old"].parameters(), models["new"].parameters()))
        rows.append(row(what, old_t, new_t, f"same initial weights: {'yes' if same_init else 'NO'}; after "
                        f"{steps * repeats} identical steps the weights differ by at most {drift:.1e}"))
        print(rows[-1], flush=True)
    return rows


def baseline_tree(rev: str, into: Path) -> Path:
    """The source of ``rev`` extracted to ``into`` (git archive), to start the old commands from."""
    archive = into / "baseline.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), rev], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "src", filter="data")
    return into / "src"


def command_seconds(tree: Path, args: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree), MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT="true")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=tree, env=env, capture_output=True,
                         text=True, timeout=600)
    seconds = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{args} in {tree}: {out.stderr[-2000:]}")
    return seconds


def imports_torch(tree: Path, args: list[str]) -> bool:
    code = (f"import sys; from benchmark.cli import main; main({args!r}); "
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)),
                         capture_output=True, text=True, timeout=600)
    return out.stdout.strip().splitlines()[-1] == "TORCH"


def start_rows(baseline: str, repeats: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        old_tree = baseline_tree(baseline, tmp)
        store = tmp / "mlflow.db"
        shutil.copy(ROOT / "results" / "fashion-mnist-cpu" / "mlflow.db", store)
        sweep = str(ROOT / "sweeps" / "fashion-mnist-cpu.yaml")
        commands = {
            "`prunebench list`": ["list"],
            "`prunebench validate sweeps/fashion-mnist-cpu.yaml`": ["validate", sweep],
            "`prunebench leaderboard` on the 81-cell fashion-mnist-cpu store (copy)":
                ["leaderboard", "--tracking-uri", f"sqlite:///{store}", "--experiment", "fashion-mnist-cpu",
                 "--out", str(tmp / "out"), "--no-mlflow"],
        }
        for what, args in commands.items():
            old_t, new_t = interleaved(lambda: command_seconds(old_tree, args), lambda: command_seconds(ROOT, args),
                                       repeats)
            torch_old, torch_new = imports_torch(old_tree, args), imports_torch(ROOT, args)
            rows.append(row(what, old_t, new_t, f"imports torch: {'yes' if torch_old else 'no'} -> "
                                                f"{'yes' if torch_new else 'no'}"))
            print(rows[-1], flush=True)
        t_torch = [command_seconds_python(["-c", "import torch"]) for _ in range(repeats)]
        rows.append({"what": "`python -c 'import torch'` alone (for scale)", "old": statistics.median(t_torch),
                     "new": None, "ratio": None, "check": "", "unit": "s", "spread": ""})
    return rows


def command_seconds_python(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True)
    return time.perf_counter() - t0


def render(rows: list[dict], memory: dict, command: str, started: str) -> str:
    lines = [
        "# Benchmark: speed where the time goes (issue 21)", "",
        f"Command: `{command}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, CPU only (no GPU was available to this run: the CUDA paths are not "
        f"measured here). Started {started}.  ",
        f"Load average (1 min) when the table was written: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
        "other jobs may share the machine, so single timings are noisy: "
        "old and new alternate (ABBA); the table gives wall-time medians, the ratio of the fastest runs (the "
        "least disturbed), the ratio of median CPU seconds (this process's threads and the subprocesses it ran; "
        "time spent descheduled is not in it; threads spinning at a barrier for a descheduled partner, shared "
        "caches and memory bandwidth still are), and "
        "each side's min-max.", "",
        "| what | old (median) | new (median) | old / new, medians | old / new, fastest | old / new, CPU time | check | "
        "spread (old / new) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        new = f"{r['new']:.3f} {r['unit']}" if r["new"] is not None else "-"
        ratio = f"{r['ratio']:.2f}x" if r["ratio"] is not None else "-"
        fastest = f"{r['min_ratio']:.2f}x" if r.get("min_ratio") is not None else "-"
        cpu = f"{r['cpu_ratio']:.2f}x" if r.get("cpu_ratio") is not None else "-"
        note = f" ({r['note']})" if r.get("note") else ""
        lines.append(f"| {r['what']}{note} | {r['old']:.3f} {r['unit']} | {new} | {ratio} | {fastest} | {cpu} | "
                     f"{r['check']} | {r['spread']} |")
    if memory:
        lines += ["", "Peak memory added by one call (fresh process each; VmHWM after minus VmRSS just before the call, MB):", "",
                  "| what | old | new |", "|---|---|---|"]
        for what, (old, new) in memory.items():
            lines.append(f"| {what} | {old:.0f} MB | {new:.0f} MB |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default="origin/main", help="git revision the start-up rows compare against")
    parser.add_argument("--sizes", default="106168320,30000000,10000000,1000000")
    parser.add_argument("--fashion-steps", type=int, default=60)
    parser.add_argument("--only", default="selection,seven,memory,fashion,formats,start",
                        help="row groups; add sft (the SEVEN SFT step, a few minutes a run) or run --only sft")
    parser.add_argument("--sft-steps", type=int, default=6, help="optimizer steps per SFT run")
    parser.add_argument("--sft-repeats", type=int, default=2, help="SFT runs per side (each a fresh process)")
    parser.add_argument("--out", default="results/bench-speed.md")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's); 1 keeps OpenMP's "
                        "barriers out of the timings on an oversubscribed machine")
    parser.add_argument("--probe", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.probe:
        (sft_probe if args.probe[0].startswith("sft-") else probe)(args.probe[0], int(args.probe[1]))
        return
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    only = set(args.only.split(","))
    sizes = [int(s) for s in args.sizes.split(",")]
    rows, memory = [], {}
    if "selection" in only:
        rows += selection_rows(sizes, args.repeats)
    if "seven" in only:
        rows += seven_rows(sizes[0], args.repeats)
    if "memory" in only:
        memory[f"global selection, {sizes[0] / 1e6:.0f} M weights"] = (
            peak_memory_probe("select-old", sizes[0]), peak_memory_probe("select-new", sizes[0]))
        memory[f"SEVEN over dense training (state + one window step), {sizes[0] / 1e6:.0f} M weights"] = (
            peak_memory_probe("seven-old", sizes[0]), peak_memory_probe("seven-new", sizes[0]))
        print(memory, flush=True)
    if "fashion" in only:
        rows += fashion_rows(args.repeats, args.fashion_steps)
    if "formats" in only:
        rows += format_rows(args.repeats)
    if "start" in only:
        rows += start_rows(args.baseline, args.repeats)
    if "sft" in only:
        sft, sft_memory = sft_rows(args.sft_repeats, args.sft_steps)
        rows += sft
        memory.update(sft_memory)
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    text = render(rows, memory, command, started)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    Path(args.out).with_suffix(".json").write_text(json.dumps({"rows": rows, "memory": memory}, indent=1))


if __name__ == "__main__":
    main()
