"""The report from per-item predictions: seed aggregation, variants, paired comparisons, CSV round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adamergex.evaluation.paired import mcnemar_exact
from adamergex.pipeline.analysis import Comparison, analyse, group_cells, label_shift
from adamergex.pipeline.predictions import Scored, read_csv, to_csv
from adamergex.pipeline.report import comparison_table, gap_line, label_shift_table, render_markdown, write_report

INFO = {
    "source_lang": "en",
    "headline": "source-dev",
    "methods": ["base", "majority", "eng-ft", "adamergex"],
    "tasks": {"multiemo": {"task_kind": "multiple_choice", "metrics": ["accuracy"], "labels": ["a", "b"]}},
    "name": "hand",
    "selections": {},
    "majority": {},
}


def _scored(
    method: str,
    lang: str,
    seed: int,
    correct: list[int],
    t: float | None = None,
    selection: str = "",
    gold: list[int] | None = None,
) -> Scored:
    gold = gold or [0] * len(correct)
    prediction = [g if c else 1 - g for g, c in zip(gold, correct, strict=True)]
    ids = tuple(f"multiemo/{lang}/test/{i}" for i in range(len(correct)))
    return Scored("multiemo", "lora", method, lang, seed, t, selection, ids, tuple(gold), tuple(prediction))


def _run() -> list[Scored]:
    eng = {0: [1, 1, 0, 0, 1, 0, 1, 0], 1: [1, 1, 0, 0, 1, 1, 1, 0]}  # 4/8 and 5/8
    ada = {0: [1, 1, 1, 0, 1, 0, 1, 1], 1: [1, 1, 1, 1, 1, 1, 1, 0]}  # 6/8 and 7/8
    scored = []
    for seed in (0, 1):
        scored.append(_scored("eng-ft", "de", seed, eng[seed]))
        scored.append(_scored("eng-ft", "en", seed, [1] * 8))
        scored.append(_scored("adamergex", "de", seed, ada[seed], t=0.5 if seed == 0 else 0.75, selection="source-dev"))
        for t in (1.0, 2.0):
            scored.append(
                _scored("adamergex", "de", seed, ada[seed] if t == 1.0 else eng[seed], t=t, selection="fixed")
            )
    return scored


def test_seeds_pool_rows_whose_tuned_t_differs_and_keep_every_fixed_t() -> None:
    analysis = analyse(_run(), INFO, resamples=500)
    rows = {(r.variant, r.lang): r for r in analysis.scores}
    assert set(rows) == {
        ("eng-ft", "de"),
        ("eng-ft", "en"),
        ("adamergex", "de"),
        ("adamergex (t = 1)", "de"),
        ("adamergex (t = 2)", "de"),
    }
    tuned = rows[("adamergex", "de")]
    assert tuned.value == pytest.approx((6 / 8 + 7 / 8) / 2) and tuned.seeds == (0, 1)
    assert tuned.per_seed == pytest.approx((0.75, 0.875))
    assert tuned.seed_sd == pytest.approx(((0.125 / 2) ** 2 * 2) ** 0.5)  # sample SD of (0.75, 0.875)
    assert tuned.low <= tuned.value <= tuned.high
    assert rows[("adamergex (t = 2)", "de")].value == pytest.approx((4 / 8 + 5 / 8) / 2)
    chosen = {(c["seed"], c["t"]) for c in analysis.chosen_t}
    assert chosen == {(0, 0.5), (1, 0.75)}


def test_paired_comparison_and_transfer_gap() -> None:
    analysis = analyse(_run(), INFO, resamples=500)
    versus = {(c.variant, c.lang): c for c in analysis.comparisons if c.metric == "accuracy"}
    tuned = versus[("adamergex", "de")]
    assert tuned.reference == "eng-ft"
    assert tuned.difference == pytest.approx(((6 - 4) + (7 - 5)) / 2 / 8)
    # only adamergex right: items 2 and 7 under seed 0, items 2 and 3 under seed 1; never only eng-ft
    assert tuned.discordant == (2 + 2, 0) and tuned.p_value == pytest.approx(mcnemar_exact(4, 0))
    same = versus[("adamergex (t = 2)", "de")]
    assert (same.difference, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    (gap,) = analysis.gaps
    assert gap.lang == "de" and gap.difference == pytest.approx(1 - (4 / 8 + 5 / 8) / 2)


def test_markdown_shows_source_column_variants_and_comparisons() -> None:
    analysis = analyse(_run(), INFO, resamples=200)
    text = render_markdown(analysis, {"info": INFO, "notes": ["a note"]})
    assert "| method | en (source) | de |" in text
    assert "| eng-ft | 100.0 ± 0.0 [100.0, 100.0] | 56.2 ± 8.8 [" in text
    assert "| adamergex (t = 1) |" in text and "| adamergex (t = 2) |" in text
    assert "| adamergex | +25.0 [" in text and "p=0.125" in text
    assert "0.5 (seed 0), 0.75 (seed 1)" in text
    assert "- a note" in text


def test_written_report_and_plots(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "predictions.csv").write_text(to_csv(_run()))
    (run / "records.json").write_text(json.dumps({"info": INFO, "curves": {"k": {"de": [[0.0, 0.5], [1.0, 0.6]]}}}))
    out = write_report(run)
    assert json.loads((out / "results.json").read_text())["comparisons"]
    for name in (
        "methods_multiemo_lora_accuracy.png",
        "vs_engft_multiemo_lora_accuracy.png",
        "t_test_multiemo_lora_accuracy.png",
        "t_curve_k.png",
    ):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert write_report(out, tmp_path / "copy").joinpath("results.md").read_text() == (out / "results.md").read_text()


answers = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(answers, st.lists(answers, min_size=1, max_size=3)), min_size=1, max_size=5),
    st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
)
def test_csv_round_trip_of_generated_answers(items: list[tuple[str, list[str]]], t: float | None) -> None:
    scored = Scored(
        "mgsm",
        "ia3",
        "adamergex",
        "de",
        3,
        t,
        "fixed" if t is not None else "",
        tuple(f"mgsm/de/test/{i}" for i in range(len(items))),
        tuple(g for _, g in items),
        tuple(p for p, _ in items),
    )
    path = Path(f"/tmp/adamergex-roundtrip-{id(items)}.csv")
    try:
        path.write_text(to_csv([scored]), encoding="utf-8")
        assert read_csv(path, {"mgsm": "generation"}) == [scored]
    finally:
        path.unlink(missing_ok=True)


def test_csv_with_wrong_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("task,method\nx,y\n")
    with pytest.raises(Exception, match="expected task,kind,method"):
        read_csv(path, {"x": "multiple_choice"})


def test_wall_time_says_when_steps_came_from_the_cache() -> None:
    analysis = analyse(_run(), INFO, resamples=50)
    fresh = render_markdown(analysis, {"info": INFO}, {"wall_time_s": 120.0, "log": {"executed": ["a", "b"]}})
    assert "Wall time of this run: 2.0 min.\n" in fresh
    resumed = {"wall_time_s": 600.0, "log": {"executed": ["a"], "cached": ["b", "c"]}}
    text = render_markdown(analysis, {"info": INFO}, resumed)
    assert "Wall time of this run: 10.0 min, computing 1 steps and finding 2 in the step cache" in text


def _gap(lang: str, difference: float, low: float | None, high: float | None) -> Comparison:
    return Comparison("t", "lora", "accuracy", "eng-ft", "eng-ft@en", lang, difference, low, high, 100)


def test_gap_closed_only_for_a_resolved_gap() -> None:
    rows = [Comparison("t", "lora", "accuracy", "adamergex", "eng-ft", "de", 0.02, -0.01, 0.05, 100, (3, 1), 0.6)]
    resolved = [_gap("de", 0.08, 0.02, 0.14)]
    table = comparison_table(rows, resolved, "title")
    assert table[1] == "| method | de | gap closed |" and table[-1].endswith("| 25% |")
    assert "*gap closed* = " in gap_line(resolved, "en")
    for unresolved in (
        [_gap("de", 0.08, -0.02, 0.18)],
        [_gap("de", -0.03, -0.08, 0.02)],
        [_gap("de", 0.0, None, None)],
    ):
        table = comparison_table(rows, unresolved, "title")
        assert table[1] == "| method | de |" and "%" not in table[-1]
        assert "No *gap closed* column: the de gap's interval reaches 0 or below" in gap_line(unresolved, "en")


def test_a_reference_ablation_gets_its_own_table() -> None:
    analysis = analyse(_run(), INFO, resamples=50)
    ablation = Comparison(
        "multiemo", "lora", "accuracy", "adamergex@task-text", "adamergex", "de", -0.05, -0.1, 0.0, 8, (1, 2), 1.0
    )
    analysis.comparisons.append(ablation)
    text = render_markdown(analysis, {"info": INFO})
    assert "#### Reference-domain ablation vs adamergex (the same merge on the run's own reference adapters)" in text
    assert "| adamergex@task-text | −5.0 [−10.0, +0.0] p=1.000 |" in text


def test_label_shift_by_hand() -> None:
    def scored(method: str, seed: int, gold: tuple[int, ...], prediction: tuple[int, ...]) -> Scored:
        ids = tuple(f"i{k}" for k in range(len(gold)))
        return Scored("multiemo", "lora", method, "de", seed, None, "", ids, gold, prediction)

    runs = [scored("eng-ft", 0, (0, 0, 1, 1), (0, 0, 0, 0)), scored("eng-ft", 1, (0, 0, 1, 1), (0, 0, 1, 0))]
    [shift] = label_shift(group_cells(runs, "", ["eng-ft"]))
    # predicted 7 of label 0 and 1 of label 1 over two seeds, gold 4 and 4: |7/8 − 1/2| = 3/8
    assert (shift.predicted, shift.gold, shift.distance) == ((7, 1), (4, 4), pytest.approx(3 / 8))
    text = label_shift_table([shift], ["a", "b"], "en")
    assert text[-1] == "| eng-ft | 37.5 (a +37.5) |"
    generated = Scored("mgsm", "lora", "eng-ft", "de", 0, None, "", ("i",), ("12",), ("13",))
    assert label_shift(group_cells([generated], "", ["eng-ft"])) == []
