"""The method contract: what the harness accepts from a method, checked where it receives it.

A method (built-in or third-party) talks to the harness only through what its hooks return:
sample indices from ``on_epoch_start``, loss weights from ``on_batch_loss``, weight masks
through :class:`~benchmark.api.masks.Masker` and ``final_masks()``, and figures from ``summary()``.
Each is checked here; a violation is a :class:`MethodError` naming the method, the hook, what
was expected and what came, and it fails the cell. Any other exception (or ``SystemExit``)
from the method's code is wrapped the same way by :func:`third_party`, so that a method can
neither stop the sweep nor pass its fault off as the harness's (a store fault). The rules are
written out for users in ``docs/registry.md``.
"""
from __future__ import annotations

import math
import numbers
import re
from typing import Any, Callable

from .lazy import lazy_import

torch = lazy_import("torch")

#: the namespace of the figures a method's ``summary()`` reports: never a measured metric's name
SUMMARY_PREFIX = "method."
_METRIC_KEY = re.compile(r"^[A-Za-z0-9_\-. /]{1,200}$")  # what MLflow takes as a metric name


class PluginFault(RuntimeError):
    """Code a method or task brings (built-in or third-party) raised or broke the contract:
    the cell fails, the sweep goes on."""


class MethodError(PluginFault):
    """A method broke the contract, or raised."""


class TaskError(PluginFault):
    """A task raised where the harness built it."""


class ContractError(ValueError):
    """What a method handed over is not what the contract allows (raised where it is checked;
    :func:`third_party` adds the method and the hook)."""


def who(hook: Any) -> str:
    """How an error names the code at fault: ``method 'el2n'`` or ``hook ClassName``."""
    name = getattr(type(hook), "name", "")
    return f"method {name!r}" if isinstance(name, str) and name else f"hook {type(hook).__qualname__}"


#: the class whose instances' code is checked: :class:`benchmark.api.method.Method`, set by that
#: module when it is imported (this module imports no other of the harness, so the mask helpers
#: and the method classes can both check through it)
_METHOD_TYPES: tuple[type, ...] = ()


def checks_instances_of(cls: type) -> None:
    """Treat instances of ``cls`` as a method's (third-party) code."""
    global _METHOD_TYPES
    _METHOD_TYPES = (*_METHOD_TYPES, cls)


def is_method(hook: Any) -> bool:
    return isinstance(hook, _METHOD_TYPES)


def third_party(hook: Any, point: str, call: Callable[..., Any], *args: Any) -> Any:
    """``call(*args)`` where ``call`` is ``hook``'s code at ``point``; when ``hook`` is a method,
    anything it raises but Ctrl-C (and SIGTERM, which the runner turns into Ctrl-C) becomes a
    :class:`MethodError` naming it. A harness hook's errors (a store fault) pass unchanged."""
    try:
        return call(*args)
    except KeyboardInterrupt:
        raise
    except PluginFault:
        raise
    except BaseException as error:  # SystemExit, GeneratorExit, anything a plugin raises
        if not is_method(hook):
            raise
        if isinstance(error, ContractError):
            raise MethodError(f"{who(hook)} broke the method contract in {point}: {error}") from error
        raise MethodError(f"{who(hook)} raised in {point}: {type(error).__name__}: {error}") from error


def built(kind: str, name: str, build: Callable[[], Any]) -> Any:
    """``build()``, the construction of the cell's ``kind`` (method or task) ``name``; anything
    it raises but Ctrl-C becomes a :class:`MethodError` / :class:`TaskError` naming it."""
    try:
        return build()
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        fault = MethodError if kind == "method" else TaskError
        raise fault(f"{kind} {name!r} raised in __init__: {type(error).__name__}: {error}") from error


def _got(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__} {str(value)[:80]}"


def check_indices(value: Any, n: int, hook: Any, point: str = "on_epoch_start") -> "torch.Tensor":
    """``value`` as a CPU int64 tensor if it is a 1-D integer tensor of distinct indices in
    [0, n), else a :class:`MethodError`. Repeats are refused: no built-in samples with
    replacement, and a repeated index would count one sample as several in the kept fraction."""
    expected = f"expected a 1-D integer torch.Tensor of distinct training-set indices in [0, {n})"
    if not isinstance(value, torch.Tensor):
        raise MethodError(f"{who(hook)} {point} returned {_got(value)}; {expected}")
    if value.dim() != 1 or value.dtype == torch.bool or value.is_floating_point() or value.is_complex():
        raise MethodError(f"{who(hook)} {point} returned {_got(value)}; {expected}")
    indices = value.detach().to("cpu", torch.int64)  # uint8 would index as a mask: int64 indexes
    if len(indices) == 0:
        return indices
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= n:
        bad = int(((indices < 0) | (indices >= n)).sum())
        raise MethodError(f"{who(hook)} {point} returned {bad} index(es) outside [0, {n}) (smallest {low}, "
                          f"largest {high}); {expected}")
    counts = torch.bincount(indices, minlength=n)
    if int(counts.max()) > 1:
        repeated = int((counts > 1).sum())
        example = int(torch.argmax(counts))
        raise MethodError(f"{who(hook)} {point} returned {len(indices)} indices of which only "
                          f"{int((counts > 0).sum())} are distinct ({repeated} repeated, "
                          f"e.g. {example} {int(counts[example])} times); {expected}: repeats are never allowed")
    return indices


def check_weights(value: Any, losses: "torch.Tensor", hook: Any, point: str = "on_batch_loss") -> "torch.Tensor":
    """``value`` if it is a floating-point tensor of the per-sample losses' exact shape. Its
    values are not read (that would make every step wait for the device): a NaN weight fails
    the cell through the non-finite loss check."""
    if (not isinstance(value, torch.Tensor) or not value.is_floating_point()
            or tuple(value.shape) != tuple(losses.shape)):
        raise MethodError(f"{who(hook)} {point} returned {_got(value)}; expected a floating-point torch.Tensor "
                          f"of per-sample loss weights of shape {tuple(losses.shape)} (one per sample of the batch)")
    return value


def check_mask(name: str, mask: Any, weights: dict[str, Any]) -> "torch.Tensor":
    """``mask`` as a boolean tensor if ``name`` is a prunable weight and ``mask`` has exactly its
    shape and a boolean dtype (or a numeric one holding only 0 and 1), else a :class:`ContractError`.
    A broadcastable shape is refused: it would be recorded as the weight's mask."""
    if name not in weights:
        raise ContractError(f"a mask for {name!r}, which is not a prunable weight; expected one of "
                            f"{sorted(weights)[:20]}")
    weight = weights[name]
    if not isinstance(mask, torch.Tensor):
        raise ContractError(f"the mask of {name!r} is {_got(mask)}; expected a bool torch.Tensor of shape "
                            f"{tuple(weight.shape)}")
    if tuple(mask.shape) != tuple(weight.shape):
        raise ContractError(f"the mask of {name!r} has shape {tuple(mask.shape)}; expected exactly its weight's "
                            f"shape {tuple(weight.shape)}")
    if mask.dtype != torch.bool:
        if mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
            raise ContractError(f"the mask of {name!r} is a {mask.dtype} tensor with values other than 0 and 1; "
                                f"expected a bool tensor (or 0 / 1 values)")
        mask = mask != 0
    return mask


def check_final_masks(masks: Any, weights: dict[str, Any], hook: Any) -> dict[str, "torch.Tensor"]:
    """What ``final_masks()`` returned, checked as :func:`check_mask` does, and against the trained
    weights: an entry a mask removes must be zero in the weight (the masks on record are the
    model's, not a claim)."""
    point = "final_masks()"
    if not isinstance(masks, dict):
        raise MethodError(f"{who(hook)} {point} returned {_got(masks)}; expected a dict of weight name -> "
                          f"bool mask")
    out = {}
    for name, mask in masks.items():
        try:
            mask = check_mask(name, mask, weights)
        except ContractError as error:
            raise MethodError(f"{who(hook)} broke the method contract in {point}: {error}") from None
        weight = weights[name].detach()
        alive = int(torch.count_nonzero(weight[~mask.to(weight.device)]))
        if alive:
            raise MethodError(f"{who(hook)} {point}: the mask of {name!r} removes {alive} entr(ies) the trained "
                              f"weight still holds as non-zero; expected the masks the model was trained with")
        out[name] = mask
    return out


def check_summary(figures: Any, hook: Any, measured: dict[str, float] | None = None) -> dict[str, float]:
    """``summary()``'s figures as ``{"method.<key>": float}``: in their own namespace, so that no
    figure a method reports can take the place of one the harness measured. A key that names a
    ``measured`` figure (``test_accuracy``, ``realised_sparsity`` ...) is a claim about it: one
    that agrees is dropped (the measurement is on record), one that disagrees fails the cell."""
    point = "summary()"
    if not isinstance(figures, dict):
        raise MethodError(f"{who(hook)} {point} returned {_got(figures)}; expected a dict of name -> number")
    measured = measured or {}
    out = {}
    for key, value in figures.items():
        if not isinstance(key, str) or not _METRIC_KEY.match(key):
            raise MethodError(f"{who(hook)} {point} returned the key {key!r}; expected a metric name of letters, "
                              f"digits and _ - . / or space (at most 200 characters)")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise MethodError(f"{who(hook)} {point} returned {key!r}: {_got(value)}; expected a real number")
        value = float(value)
        if math.isinf(value):  # NaN is 'no figure'; an infinity is none either
            raise MethodError(f"{who(hook)} {point} returned {key!r}: {value}; expected a finite number (or NaN)")
        if key in measured:
            if value == measured[key] or (math.isnan(value) and math.isnan(measured[key])):
                continue
            raise MethodError(f"{who(hook)} {point} returned {key!r} = {value!r}, but the harness measured "
                              f"{measured[key]!r}; expected figures of the method's own (logged as "
                              f"{SUMMARY_PREFIX}<key>), or measured ones that agree")
        out[f"{SUMMARY_PREFIX}{key}"] = value
    return out
