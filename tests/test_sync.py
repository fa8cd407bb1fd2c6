"""A training step reads nothing back to the host: every tensor-to-Python conversion made
inside the trainer's step (forward, loss, hooks, backward, optimizer, on_step_end) is
counted, for the plain trainer and with every method whose hooks run per step."""
from __future__ import annotations

import contextlib

import pytest
import torch

import benchmark.api.masks as masks_module
from benchmark.training.trainer import Trainer
from helpers_tiny import cpu, one_cpu_thread, tiny_task  # noqa: F401
from methods.data.epsilon_greedy import EpsilonGreedy
from methods.data.infobatch import InfoBatch
from methods.data.ucb import UCB
from methods.data.emp import EMP
from methods.model.magnitude import Magnitude
from methods.model.movement import Movement, SoftMovement
from methods.model.platon import Platon
from methods.data.random_data import RandomData
from methods.model.random_weights import RandomWeights
from methods.model.seven import Seven
from methods.data.ted import TED

CONVERSIONS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__")


@contextlib.contextmanager
def counting_step_conversions(monkeypatch):
    """Yields a dict: conversions made inside Trainer._step, by kind, and the steps taken."""
    counts = {name: 0 for name in CONVERSIONS} | {"steps": 0, "outside": 0}
    inside = [False]

    def wrap(name):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, **kwargs):
            counts[name if inside[0] else "outside"] += 1
            return original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)

    for name in CONVERSIONS:
        wrap(name)
    step = Trainer._step

    def counted_step(self, *args, **kwargs):
        inside[0] = True
        try:
            return step(self, *args, **kwargs)
        finally:
            inside[0] = False
            counts["steps"] += 1

    monkeypatch.setattr(Trainer, "_step", counted_step)
    yield counts


def test_the_counter_sees_a_conversion(monkeypatch):
    """The counter can fail: a step that reads a float and a bool back (as the old loss
    check and loss log did) is caught, once each per step."""
    step = Trainer._step

    def syncing_step(self, *args, **kwargs):
        step(self, *args, **kwargs)
        float(torch.ones(()))
        bool(torch.ones(()) > 0)

    monkeypatch.setattr(Trainer, "_step", syncing_step)
    with counting_step_conversions(monkeypatch) as counts:
        _fit(tiny_task(epochs=1), [])
    assert counts["steps"] > 0
    assert counts["__float__"] == counts["__bool__"] == counts["steps"]


def _fit(task, hooks):
    splits = task.load_splits()
    trainer = Trainer(task, splits, cpu(), seed=0, hooks=hooks, evaluate_each_epoch=False)
    return trainer.fit(trainer.build_model())


METHODS = {
    "dense": lambda: [],
    "random": lambda: [RandomData(0.5, 0)],
    "emp": lambda: [EMP(0.5, 0)],
    "emp-infobatch": lambda: [EMP(0.5, 0, infobatch=True)],
    "ted": lambda: [TED(0.5, 0)],
    "infobatch": lambda: [InfoBatch(0.5, 0, delta=1.0)],
    "ucb": lambda: [UCB(0.5, 0)],
    "epsilon-greedy": lambda: [EpsilonGreedy(0.5, 0)],
    "magnitude-gradual": lambda: [Magnitude(0.5, 0, schedule="gradual", updates=4)],
    "random-weights": lambda: [RandomWeights(0.5, 0)],
    "seven-global": lambda: [Seven(0.5, 0, start=0.0, length=0.5)],
    "seven-layer": lambda: [Seven(0.5, 0, scope="layer", start=0.0, length=0.5)],
    "movement": lambda: [Movement(0.5, 0, warmup_steps=0.2)],
    "movement-reference-count": lambda: [Movement(0.5, 0, warmup_steps=0.2, count_rule="reference")],
    "movement-seven": lambda: [Movement(0.5, 0, variant="seven", start=0.0, length=0.5)],
    "soft-movement": lambda: [SoftMovement(0.5, 0, warmup_steps=0.2)],
    "soft-movement-sigmoid": lambda: [SoftMovement(0.5, 0, selection="sigmoid_threshold", warmup_steps=0.2)],
    "platon": lambda: [Platon(0.5, 0, deltaT=2, warmup_steps=0.2, final_warmup=2.0)],
    "platon-seven": lambda: [Platon(0.5, 0, variant="seven", start=0.0, length=0.5)],
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_no_conversion_inside_a_training_step(method, monkeypatch):
    # the mask selection's CPU shortcuts read counts on the host (no synchronisation there);
    # run the code a GPU runs instead, which must read nothing
    monkeypatch.setattr(masks_module, "on_host", lambda device: False)
    with counting_step_conversions(monkeypatch) as counts:
        result = _fit(tiny_task(epochs=3), METHODS[method]())
    assert counts["steps"] == result.state.step > 3
    assert {name: counts[name] for name in CONVERSIONS} == {name: 0 for name in CONVERSIONS}
