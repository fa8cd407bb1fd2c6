"""AUM, area under the margin (Pleiss et al., "Identifying Mislabeled Data using the Area Under
the Margin Ranking", NeurIPS 2020).

Score, from one recorded full-data proxy run (:mod:`benchmark.training.dynamics`), each sample seen as
it is visited in its minibatch (training mode):

- ``margin="probability"`` (default, the CCS code's ``accumulated_margin``): the sum over
  epochs of ``p_y - max_{c != y} p_c`` (softmax probabilities). CCS logs once per iteration of
  a full-data run, i.e. once per sample per epoch, so the sum runs over the epochs; CCS stores
  the log-softmax in fp16 first, which moves its AUM by up to ~1e-3;
- ``margin="logit"`` (the paper): the mean over epochs of ``z_y - max_{c != y} z_c`` (logits).

Convention: keep the LOWEST AUM (CCS ``--data-score-descending 0``: low AUM = hard or
mislabeled), ties by lower index (CCS: an unstable sort). ``ratio`` is the fraction removed;
``n - round(ratio * n)`` are kept (CCS keeps ``int(keep * n)``). The logged scores are the AUM
itself (lower = kept first).
"""
from __future__ import annotations

from benchmark.training.dynamics import DynamicsMethod, option_error
from benchmark.api.registry import register_method

from .forgetting import keep_top

MARGINS = ("probability", "logit")


def aum_scores(record, margin: str):
    if margin == "probability":
        return record["prob_margin"].double().sum(dim=0)
    return record["logit_margin"].double().mean(dim=0)


@register_method("aum")
class AUM(DynamicsMethod):
    provenance = "reference-code"

    def __init__(self, ratio: float, seed: int = 0, *, margin: str = "probability", class_balanced: bool = False,
                 proxy_epochs: int | None = None):
        super().__init__(ratio, seed)
        if margin not in MARGINS:
            raise option_error("aum", "margin", margin,
                               f"use one of {MARGINS} (probability: the CCS code, logit: the paper)")
        self.margin, self.class_balanced = margin, bool(class_balanced)
        self._set_proxy_epochs(proxy_epochs)

    def score(self, record):
        return aum_scores(record, self.margin)

    def choose(self, scores, record):
        labels = record["targets"] if self.class_balanced else None
        return keep_top(-scores.double(), self.n_keep(len(scores)), labels)
