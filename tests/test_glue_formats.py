"""GLUE .tsv readers: one fixture per task in its exact layout (header rules, quote
characters, MNLI's 12- and 16-column files), read back exactly; every format error names
the file and the 1-based line; QQP's skip policy; missing files."""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.api.task import DataFormatError, DataNotFoundError
from tasks.text.glue_formats import GLUE_FORMATS, MNLI_DEV, MNLI_TRAIN, glue_file, read_glue_tsv


def write(glue_dir: Path, task: str, split: str, lines: list[str], *, mismatched: bool = False,
          bom: bool = False) -> Path:
    """Write ``lines`` (newline-terminated, UTF-8) where :func:`glue_file` says the file lives."""
    path = glue_file(task, glue_dir, split, mismatched=mismatched)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + "".join(line + "\n" for line in lines).encode("utf-8"))
    return path


def tsv(*fields: str) -> str:
    return "\t".join(fields)


@pytest.fixture
def glue_dir(tmp_path: Path) -> Path:
    return tmp_path / "glue_data"


# --- one fixture per layout -------------------------------------------------------------------------


def test_sst2(glue_dir):
    path = write(glue_dir, "sst2", "train", [
        tsv("sentence", "label"),
        tsv("the plot 's \" twist \" arrives far too late ", "0"),
        tsv("a warm , funny and wholly winning film ", "1"),
    ])
    assert path == glue_dir / "SST-2" / "train.tsv"
    examples = read_glue_tsv("sst2", path)
    assert examples.text_a == ["the plot 's \" twist \" arrives far too late ",
                               "a warm , funny and wholly winning film "]
    assert examples.text_b is None and examples.labels == [0, 1] and len(examples) == 2 and examples.skipped == 0
    assert glue_file("sst2", glue_dir, "dev") == glue_dir / "SST-2" / "dev.tsv"


def test_cola_has_no_header(glue_dir):
    path = write(glue_dir, "cola", "dev", [
        tsv("gj04", "1", "", "The teacher said \"sit down\" twice."),
        tsv("gj04", "0", "*", "The book was read it by Kim."),
        tsv("bc01", "1", "", "Whom did you say that Pat saw?"),
    ])
    assert path == glue_dir / "CoLA" / "dev.tsv"
    examples = read_glue_tsv("cola", path)  # the first line is an example, not a header
    assert examples.text_a == ["The teacher said \"sit down\" twice.", "The book was read it by Kim.",
                               "Whom did you say that Pat saw?"]
    assert examples.text_b is None and examples.labels == [1, 0, 1]


def test_mrpc_with_a_byte_order_mark(glue_dir):
    path = write(glue_dir, "mrpc", "train", [
        tsv("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
        tsv("1", "1001", "1002", "The mayor called the report \" deeply flawed \" on Monday .",
            "On Monday the mayor said the report was \" deeply flawed \" ."),
        tsv("0", "2001", "2002", "Shares rose 3 percent .", "The company opened two stores ."),
    ], bom=True)
    assert path == glue_dir / "MRPC" / "train.tsv"
    examples = read_glue_tsv("mrpc", path)
    assert examples.text_a == ["The mayor called the report \" deeply flawed \" on Monday .", "Shares rose 3 percent ."]
    assert examples.text_b == ["On Monday the mayor said the report was \" deeply flawed \" .",
                               "The company opened two stores ."]
    assert examples.labels == [1, 0]


def test_qqp(glue_dir):
    path = write(glue_dir, "qqp", "dev", [
        tsv("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
        tsv("201", "401", "402", "What does \"carpe diem\" mean?", "What is the meaning of carpe diem?", "1"),
        tsv("202", "403", "404", "How do I learn Go?", "Which laptop should I buy?", "0"),
    ])
    assert path == glue_dir / "QQP" / "dev.tsv"
    examples = read_glue_tsv("qqp", path)
    assert examples.text_a == ["What does \"carpe diem\" mean?", "How do I learn Go?"]
    assert examples.text_b == ["What is the meaning of carpe diem?", "Which laptop should I buy?"]
    assert examples.labels == [1, 0] and examples.skipped == 0


def test_stsb_scores_are_floats(glue_dir):
    path = write(glue_dir, "stsb", "train", [
        tsv("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2", "score"),
        tsv("0", "main-captions", "MSRvid", "2012test", "0001", "none", "none",
            "A man is playing a \"flute\".", "A man plays the flute.", "3.800"),
        tsv("1", "main-news", "headlines", "2015", "0002", "none", "none", "Two dogs run.", "Two dogs run.", "5.000"),
        tsv("2", "main-forums", "answers-forums", "2015", "0003", "none", "none", "A cat.", "The stock fell.", "0"),
    ])
    assert path == glue_dir / "STS-B" / "train.tsv"
    examples = read_glue_tsv("stsb", path)
    assert examples.text_a == ["A man is playing a \"flute\".", "Two dogs run.", "A cat."]
    assert examples.text_b == ["A man plays the flute.", "Two dogs run.", "The stock fell."]
    assert examples.labels == [3.8, 5.0, 0.0] and all(type(v) is float for v in examples.labels)


def mnli_row(index: str, premise: str, hypothesis: str, votes: list[str]) -> str:
    parse = f"( ( {premise} ) )"
    return tsv(index, "31193", f"{index}n", "fiction", parse, f"( {hypothesis} )", f"(ROOT {parse})",
               f"(ROOT ( {hypothesis} ))", premise, hypothesis, *votes)


def test_mnli_train_has_12_columns(glue_dir):
    assert len(MNLI_TRAIN) == 12 and len(MNLI_DEV) == 16
    path = write(glue_dir, "mnli", "train", [
        "\t".join(MNLI_TRAIN),
        mnli_row("0", "He said \"no\" and left.", "He refused.", ["entailment", "entailment"]),
        mnli_row("1", "The shop is closed.", "The shop is open.", ["contradiction", "contradiction"]),
        # label1 differs from gold_label: the gold label is the one read
        mnli_row("2", "She paints.", "She is famous.", ["contradiction", "neutral"]),
    ])
    assert path == glue_dir / "MNLI" / "train.tsv"
    examples = read_glue_tsv("mnli", path)
    assert examples.text_a == ["He said \"no\" and left.", "The shop is closed.", "She paints."]
    assert examples.text_b == ["He refused.", "The shop is open.", "She is famous."]
    assert examples.labels == [1, 0, 2]  # contradiction, entailment, neutral


@pytest.mark.parametrize("mismatched, name", [(False, "dev_matched.tsv"), (True, "dev_mismatched.tsv")])
def test_mnli_dev_has_16_columns(glue_dir, mismatched, name):
    path = write(glue_dir, "mnli", "dev", [
        "\t".join(MNLI_DEV),
        mnli_row("0", "The \"new\" rule applies.", "A rule applies.", ["neutral", "entailment", "entailment",
                                                                    "entailment", "neutral", "entailment"]),
        mnli_row("1", "It rained.", "It was dry.", ["contradiction"] * 5 + ["neutral"]),
    ], mismatched=mismatched)
    assert path == glue_dir / "MNLI" / name
    examples = read_glue_tsv("mnli", path)
    assert examples.text_a == ["The \"new\" rule applies.", "It rained."]
    assert examples.text_b == ["A rule applies.", "It was dry."]
    assert examples.labels == [1, 2]


def test_qnli(glue_dir):
    path = write(glue_dir, "qnli", "train", [
        tsv("index", "question", "sentence", "label"),
        tsv("0", "What is \"the Loop\"?", "The Loop is the central business district.", "entailment"),
        tsv("1", "When was it built?", "It is painted red.", "not_entailment"),
    ])
    assert path == glue_dir / "QNLI" / "train.tsv"
    examples = read_glue_tsv("qnli", path)
    assert examples.text_a == ["What is \"the Loop\"?", "When was it built?"]
    assert examples.text_b == ["The Loop is the central business district.", "It is painted red."]
    assert examples.labels == [0, 1]


def test_rte(glue_dir):
    path = write(glue_dir, "rte", "dev", [
        tsv("index", "sentence1", "sentence2", "label"),
        tsv("0", "The film \"Heat\" was released in 1995.", "Heat was released in 1995.", "entailment"),
        tsv("1", "Ann lives in Oslo.", "Ann lives in Rome.", "not_entailment"),
    ])
    assert path == glue_dir / "RTE" / "dev.tsv"
    examples = read_glue_tsv("rte", path)
    assert examples.text_a == ["The film \"Heat\" was released in 1995.", "Ann lives in Oslo."]
    assert examples.text_b == ["Heat was released in 1995.", "Ann lives in Rome."]
    assert examples.labels == [0, 1]


def test_the_format_table():
    assert sorted(GLUE_FORMATS) == sorted(["sst2", "cola", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte"])
    table = {name: (f.directory, f.num_labels, f.metrics, f.headline, f.is_regression)
             for name, f in GLUE_FORMATS.items()}
    assert table == {
        "sst2": ("SST-2", 2, ("accuracy",), "accuracy", False),
        "cola": ("CoLA", 2, ("matthews",), "matthews", False),
        "mrpc": ("MRPC", 2, ("accuracy", "f1"), "f1", False),
        "qqp": ("QQP", 2, ("accuracy", "f1"), "f1", False),
        "stsb": ("STS-B", 1, ("pearson", "spearman"), "pearson", True),
        "mnli": ("MNLI", 3, ("accuracy",), "accuracy", False),
        "qnli": ("QNLI", 2, ("accuracy",), "accuracy", False),
        "rte": ("RTE", 2, ("accuracy",), "accuracy", False),
    }
    assert GLUE_FORMATS["mnli"].label_names == ("contradiction", "entailment", "neutral")
    assert GLUE_FORMATS["stsb"].label_names == ()
    assert all(f.headline in f.metrics for f in GLUE_FORMATS.values())


def test_only_newlines_end_lines_and_blank_lines_are_ignored(glue_dir):
    path = glue_file("rte", glue_dir, "train")
    path.parent.mkdir(parents=True)
    text = "index\tsentence1\tsentence2\tlabel\r\n\n0\tA\u2028B\x0cC\tD\tnot_entailment\r\n\n"
    path.write_bytes(text.encode("utf-8"))
    examples = read_glue_tsv("rte", path)
    assert examples.text_a == ["A\u2028B\x0cC"] and examples.text_b == ["D"] and examples.labels == [1]


# --- QQP's skip policy ------------------------------------------------------------------------------


def test_qqp_skips_short_rows_and_counts_them(glue_dir):
    path = write(glue_dir, "qqp", "train", [
        tsv("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
        tsv("1", "1", "2", "Is this fine?", "Is it fine?", "1"),
        tsv("2", "3", "4", "Why is the sky"),  # a question broken by a stray newline ...
        tsv("blue?", "What colour is the sky?", "0"),  # ... leaves two short rows
        tsv("3", "5", "6", "", "0"),  # a missing question
        tsv("4", "7", "8", "How old is \"Bob\"?", "Who is Bob?", "0"),
    ])
    examples = read_glue_tsv("qqp", path)
    assert examples.skipped == 3
    assert examples.text_a == ["Is this fine?", "How old is \"Bob\"?"] and examples.labels == [1, 0]


def test_qqp_still_rejects_long_rows(glue_dir):
    path = write(glue_dir, "qqp", "train", [
        tsv("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
        tsv("1", "1", "2", "Tab\tinside?", "Is it?", "1"),
    ])
    with pytest.raises(DataFormatError) as info:
        read_glue_tsv("qqp", path)
    assert f"{path}, line 2: expected 6 tab-separated fields, got 7" in str(info.value)


def test_qqp_with_only_short_rows_has_no_examples(glue_dir):
    path = write(glue_dir, "qqp", "dev", [tsv("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
                                          tsv("1", "2", "3")])
    with pytest.raises(DataFormatError, match="1 short rows skipped") as info:
        read_glue_tsv("qqp", path)
    assert f"{path}, line 3:" in str(info.value)


# --- errors name the file and the line ----------------------------------------------------------


def raises_at(task: str, path: Path, line: int, *fragments: str) -> str:
    with pytest.raises(DataFormatError) as info:
        read_glue_tsv(task, path)
    message = str(info.value)
    assert f"{path}, line {line}:" in message
    for fragment in fragments:
        assert fragment in message
    return message


RTE_HEADER = tsv("index", "sentence1", "sentence2", "label")


def test_wrong_field_count(glue_dir):
    lines = [RTE_HEADER] + [tsv(str(i), "A.", "B.", "entailment") for i in range(5)] + [tsv("5", "A.", "entailment")]
    path = write(glue_dir, "rte", "train", lines)
    raises_at("rte", path, 7, "expected 4 tab-separated fields, got 3")
    # a short SST-2 row is no exception: only QQP skips
    path = write(glue_dir, "sst2", "dev", [tsv("sentence", "label"), tsv("fine .", "1"), "no label ."])
    raises_at("sst2", path, 3, "expected 2 tab-separated fields, got 1")
    path = write(glue_dir, "cola", "train", [tsv("gj04", "1", "", "Fine."), tsv("gj04", "1", "Fine.")])
    raises_at("cola", path, 2, "expected 4 tab-separated fields, got 3")


def test_line_numbers_count_blank_lines(glue_dir):
    path = write(glue_dir, "rte", "dev", [RTE_HEADER, "", tsv("0", "A.", "B.", "entailment"), "", "0\tA."])
    raises_at("rte", path, 5, "got 2")


@pytest.mark.parametrize("task, header", [
    ("rte", tsv("index", "sentence1", "sentence2")),  # a column missing
    ("rte", tsv("index", "sentence2", "sentence1", "label")),  # columns swapped
    ("qnli", tsv("0", "Why?", "Because.", "entailment")),  # no header at all
    ("mrpc", tsv("quality", "#1 ID", "#2 ID", "#1 String", "#2 String")),
    ("mnli", "\t".join(MNLI_TRAIN[:-1])),
])
def test_wrong_header(glue_dir, task, header):
    path = write(glue_dir, task, "train", [header, "x"])
    raises_at(task, path, 1, "header", repr(header))


def test_a_header_where_cola_has_none(glue_dir):
    path = write(glue_dir, "cola", "train", [tsv("source", "label", "original", "sentence"),
                                             tsv("gj04", "1", "", "Fine.")])
    raises_at("cola", path, 1, "unknown label 'label'")


@pytest.mark.parametrize("task, row, value", [
    ("qnli", tsv("3", "Q?", "A.", "neutral"), "neutral"),
    ("sst2", tsv("good .", "positive"), "positive"),
    ("rte", tsv("3", "A.", "B.", "Entailment"), "Entailment"),
])
def test_unknown_label(glue_dir, task, row, value):
    header = GLUE_FORMATS[task].headers[0]
    good = {"qnli": tsv("0", "Q?", "A.", "entailment"), "sst2": tsv("ok .", "1"),
            "rte": tsv("0", "A.", "B.", "entailment")}
    path = write(glue_dir, task, "dev", ["\t".join(header), good[task], good[task], row])
    allowed = ", ".join(repr(v) for v in GLUE_FORMATS[task].label_values)
    raises_at(task, path, 4, f"unknown label {value!r}", f"allowed: {allowed}")


def test_mnli_without_a_gold_label(glue_dir):
    path = write(glue_dir, "mnli", "dev", ["\t".join(MNLI_DEV), mnli_row("0", "A.", "B.", ["neutral"] * 5 + ["-"])])
    raises_at("mnli", path, 2, "unknown label '-'", "'contradiction', 'entailment', 'neutral'")


STSB_HEADER = "\t".join(GLUE_FORMATS["stsb"].headers[0])


@pytest.mark.parametrize("score, fragment", [
    ("high", "'high' is not a number"), ("", "'' is not a number"),
    ("5.2", "outside [0, 5]"), ("-0.5", "outside [0, 5]"), ("nan", "outside [0, 5]"),
])
def test_bad_stsb_score(glue_dir, score, fragment):
    row = tsv("0", "main-news", "headlines", "2015", "0001", "none", "none", "A.", "B.", "{}")
    path = write(glue_dir, "stsb", "dev", [STSB_HEADER, row.format("2.5"), row.format(score)])
    raises_at("stsb", path, 3, fragment)


@pytest.mark.parametrize("content, line", [(b"", 1), (b"\n\n", 1), (b"sentence\tlabel\n", 2)])
def test_empty_file(glue_dir, content, line):
    path = glue_file("sst2", glue_dir, "train")
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    raises_at("sst2", path, line)


def test_invalid_utf8(glue_dir):
    path = glue_file("sst2", glue_dir, "train")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"sentence\tlabel\nfine .\t1\ncaf\xe9 .\t1\n")
    raises_at("sst2", path, 3, "UTF-8")


def test_missing_file_names_the_path_and_the_layout(glue_dir):
    path = glue_file("rte", glue_dir, "train")
    with pytest.raises(DataNotFoundError) as info:
        read_glue_tsv("rte", path)
    assert str(path) in str(info.value) and "glue_data/RTE/train.tsv" in str(info.value)
    with pytest.raises(DataNotFoundError, match="glue_data/MNLI/dev_mismatched.tsv"):
        read_glue_tsv("mnli", glue_file("mnli", glue_dir, "dev", mismatched=True))


def test_bad_task_or_split():
    with pytest.raises(ValueError, match="unknown GLUE task 'sst-2'"):
        glue_file("sst-2", "x", "train")
    with pytest.raises(ValueError, match="unknown GLUE split 'test'"):
        glue_file("rte", "x", "test")
    with pytest.raises(ValueError, match="mismatched"):
        glue_file("rte", "x", "dev", mismatched=True)
    with pytest.raises(ValueError, match="mismatched"):
        glue_file("mnli", "x", "train", mismatched=True)
    with pytest.raises(ValueError, match="unknown GLUE task"):
        read_glue_tsv("wnli", "x")
