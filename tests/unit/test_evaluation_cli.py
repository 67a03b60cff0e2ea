"""``recstream eval`` end to end on small files with the in-memory backend."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from recstream_cli.main import cli

BASE = 1_700_000_000


def write_sessions(path: Path, sessions: list[list[int]], start: int) -> None:
    rows = ["SessionId\tItemId\tTime"]
    for n, items in enumerate(sessions):
        rows += [
            f"{start + n}\t{item}\t{BASE + 3600 * (start + n) + i}" for i, item in enumerate(items)
        ]
    path.write_text("\n".join(rows) + "\n")


def test_eval_writes_the_table_json_markdown_and_plot(tmp_path: Path) -> None:
    train, test, out = tmp_path / "train.tsv", tmp_path / "test.tsv", tmp_path / "out"
    write_sessions(train, [[1, 2, 3], [2, 3], [1, 3, 4], [4, 5]] * 3, 0)
    write_sessions(test, [[1, 2, 3], [4, 5, 9]], 100)
    args = [
        "eval", "--train", str(train), "--test", str(test), "--k", "5", "--mode", "both",
        "--methods", "blend,session,vsknn,pop-baseline", "--out", str(out),
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "HR@5" in result.output
    for method in ("blend", "session", "vsknn", "pop-baseline"):  # a progress bar each
        assert f"frozen next-item {method} (" in result.output
    assert "vsknn" in result.output
    document = json.loads((out / "results.json").read_text())
    assert [r["mode"] for r in document["results"]] == ["frozen", "prequential"]
    frozen = document["results"][0]
    assert (frozen["cases"], frozen["sessions"], frozen["targets_in_catalogue"]) == (4, 2, 3)
    assert list(frozen["methods"]) == ["blend", "session", "pop-baseline", "vsknn"]
    assert len(frozen["methods"]["blend"]["hr"]) == 5
    assert frozen["methods"]["blend"]["widget"]["cases"] == 4  # no re-visit in the test
    assert document["config"]["core"]["decay_landmark"] == BASE - BASE % 86_400
    report = (out / "report.md").read_text()
    assert "| blend |" in report
    assert "widget HR@5" in report
    assert "prequential mode" in report
    assert (out / "hr_mrr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_without_a_test_file_splits_and_top_n_holds_out(tmp_path: Path) -> None:
    data, out = tmp_path / "all.tsv", tmp_path / "out"
    write_sessions(data, [[1, 2, 3, 4, 5, 6], [2, 3, 4, 5, 6], [1, 3, 4, 6, 2]] * 4, 0)
    split = CliRunner().invoke(
        cli, ["eval", "--train", str(data), "--test-fraction", "0.25", "--out", str(out)]
    )
    assert split.exit_code == 0, split.output
    summary = json.loads((out / "results.json").read_text())["results"][0]
    assert summary["sessions"] == 3  # the last quarter of 12 sessions
    assert summary["cases"] == 5 + 4 + 4

    top_n = CliRunner().invoke(
        cli, ["eval", "--train", str(data), "--protocol", "top-n", "--out", str(out / "n")]
    )
    assert top_n.exit_code == 0, top_n.output
    summary = json.loads((out / "n" / "results.json").read_text())["results"][0]
    assert (summary["protocol"], summary["k"], summary["users"]) == ("top-n", 10, 12)
    assert not (out / "n" / "hr_mrr.png").exists()


def test_eval_rejects_unknown_methods_and_a_test_file_for_top_n(tmp_path: Path) -> None:
    data = tmp_path / "all.tsv"
    write_sessions(data, [[1, 2]], 0)
    bad = CliRunner().invoke(
        cli, ["eval", "--train", str(data), "--methods", "gru4rec", "--out", str(tmp_path)]
    )
    assert bad.exit_code == 2
    assert "unknown methods gru4rec" in bad.output
    both = CliRunner().invoke(
        cli, ["eval", "--train", str(data), "--test", str(data), "--protocol", "top-n",
              "--out", str(tmp_path)],
    )  # fmt: skip
    assert both.exit_code == 2
    assert "omit --test" in both.output


def test_validation_scores_a_split_carved_from_the_training_data(tmp_path: Path) -> None:
    data, test, out = tmp_path / "all.tsv", tmp_path / "test.tsv", tmp_path / "out"
    write_sessions(data, [[1, 2, 3, 4, 5, 6], [2, 3, 4, 5, 6], [1, 3, 4, 6, 2]] * 4, 0)
    test.write_text("not a session file\n")  # --validation never reads the test file
    args = ["eval", "--train", str(data), "--test", str(test), "--test-fraction", "0.25",
            "--methods", "blend,vsknn", "--validation", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    document = json.loads((out / "results.json").read_text())
    meta = document["meta"]
    assert meta["split"].startswith("validation")
    assert "test" not in meta
    assert meta["title"] == "all.tsv (validation split)"
    assert (meta["train events"], meta["test events"]) == (48, 16)  # sessions 0-8, 9-11
    summary = document["results"][0]
    assert (summary["sessions"], summary["cases"]) == (3, 5 + 4 + 4)

    # without --test the file's last quarter of sessions (9-11) is the test split, left
    # out; the validation split is the last-ending quarter of the 9 others (7-8)
    args = ["eval", "--train", str(data), "--test-fraction", "0.25", "--methods", "blend",
            "--validation", "--out", str(out / "no-test")]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "no-test" / "results.json").read_text())["meta"]
    assert (meta["train events"], meta["test events"]) == (6 + 5 + 5 + 6 + 5 + 5 + 6, 5 + 5)

    # top-n: each user's last 20% held out of the training part, itself the file without
    # each user's last 20%: the 6-item users keep 5, then 4 for training and 1 to score;
    # the 5-item users keep 4, too few to hold out again
    args = ["eval", "--train", str(data), "--protocol", "top-n", "--methods", "blend",
            "--validation", "--out", str(out / "n")]  # fmt: skip
    top_n = CliRunner().invoke(cli, args)
    assert top_n.exit_code == 0, top_n.output
    document = json.loads((out / "n" / "results.json").read_text())
    assert document["results"][0]["users"] == 4
    assert document["meta"]["train events"] == 5 * 4 + 4 * 8  # the part split again


def test_the_config_file_sets_the_rankers_training_and_is_checked(tmp_path: Path) -> None:
    data, config = tmp_path / "all.tsv", tmp_path / "config.json"
    write_sessions(data, [[1, 2, 3], [2, 3, 4]] * 3, 0)
    config.write_text(json.dumps({"ranker": {"min_groups": 123_456}}))
    args = ["eval", "--train", str(data), "--methods", "ranker", "--config", str(config),
            "--out", str(tmp_path / "out")]  # fmt: skip
    reached = CliRunner().invoke(cli, args)
    assert reached.exit_code == 0, reached.output
    assert "a model needs at least 123456" in reached.output  # the option reached training
    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert document["config"]["ranker"] == {"min_groups": 123_456}

    config.write_text(json.dumps({"ranker": {"later_label": 0.5, "sources": ["nearby"]}}))
    args = ["eval", "--train", str(data), "--config", str(config), "--out", str(tmp_path)]
    bad = CliRunner().invoke(cli, args)
    assert bad.exit_code == 2
    assert "ranker" in bad.output
    assert "choose one or more of sequential" in bad.output
    config.write_text(json.dumps({"ranker": {"later_labels": 0.5}}))
    unknown = CliRunner().invoke(cli, args)
    assert unknown.exit_code == 2
    assert "later_labels" in unknown.output


def test_validation_refuses_a_model_trained_elsewhere(tmp_path: Path) -> None:
    data, model = tmp_path / "all.tsv", tmp_path / "model.json"
    write_sessions(data, [[1, 2, 3]], 0)
    model.write_text("{}")
    args = ["eval", "--train", str(data), "--validation", "--model", str(model),
            "--out", str(tmp_path)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "may have seen the validation split" in result.output
