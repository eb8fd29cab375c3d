"""The BENCHMARKS.md writer: sections from JSON, the rest carried over verbatim with --keep."""

import json

import pytest

from mimofm.experiments.benchmarks_page import keep_block, main


def _eval_json(path):
    rows = []
    for snr in (0.0, 20.0):
        for p, f in (("zf", 0.5), ("wmmse", 1.0), ("dpc", 1.05)):
            rows.append(
                {
                    "site": "s1",
                    "snr_db": snr,
                    "precoder": p,
                    "sum_rate_mean": f * (1 + snr / 10),
                    "sum_rate_ci95": 0.01,
                    "num_samples": 10,
                    "seconds_per_precoder": f * 1e-4,
                    "iterations_mean": 5.0 if p == "wmmse" else None,
                }
            )
    path.write_text(
        json.dumps(
            {
                "results": rows,
                "config": {"num_ue": 4, "positions": "test", "samples": 10},
                "sites": [{"num_bs_ant": 64}],
                "machine": {"platform": "p", "torch": "t", "threads": 2},
            }
        )
    )


def test_page_from_eval_json_keeps_the_sections_it_does_not_remake(tmp_path):
    _eval_json(tmp_path / "eval.json")
    old = tmp_path / "old.md"
    old.write_text(
        "# x\n\n## Summary\nold summary\n\n## fm: the paper's results\nfm table 0.975\n\n"
        "## Time per precoder (CPU)\nspeed table\n"
    )
    page = main(["--eval", str(tmp_path / "eval.json"), "--keep", str(old), "--out", str(old)])
    assert "| zf | 0.500 | 0.500 | 0.476 |" in page  # remade: ratios to WMMSE per SNR, to DPC
    assert "old summary" not in page  # the summary is always remade from the eval JSON
    assert "fm table 0.975" in page and "speed table" in page  # carried over verbatim
    assert "## Training cost of the shipped checkpoints" in page and "## How this page was made" in page
    assert old.read_text().strip() == page.strip()


def test_keep_block_stops_at_the_next_section_and_names_a_missing_one():
    lines = ["## A", "a", "## B", "b1", "b2", "## C"]
    assert keep_block(lines, "## B") == ["## B", "b1", "b2"]
    with pytest.raises(SystemExit, match="## D"):
        keep_block(lines, "## D")


def test_page_without_eval_json_carries_the_summary_over_and_adds_the_wifoe_operating_point(tmp_path):
    old = tmp_path / "old.md"
    old.write_text(
        "# x\n\n## Summary\nheld-out summary 0.97\n\n3GPP 38.901 tasks T1–T9 rows\n\n"
        "## Quality on the held-out sites\nquality 0.5\n\n## wifoe: the paper's tables\nold table\n"
    )
    cal, op = tmp_path / "cal", tmp_path / "op"
    for d, text in ((cal, "### Data SNR\ncalibrated 16.4 dB\n"), (op, "### Table II analogue\nMTL 0.71\n")):
        d.mkdir()
        (d / "summary.md").write_text(text)
    page = main(["--keep", str(old), "--wifoe-op", str(cal), str(op)])
    assert page.count("held-out summary 0.97") == 1 and page.count("3GPP 38.901 tasks T1–T9 rows") == 1
    assert "quality 0.5" in page and "old table" in page
    new = page.index("## wifoe at the calibrated operating point")
    assert new < page.index("## wifoe: the paper's tables")
    assert "#### Data SNR" in page and "calibrated 16.4 dB" in page and "MTL 0.71" in page
    with pytest.raises(SystemExit):
        main([])  # neither --eval nor --keep


def test_the_page_is_a_plain_function_and_never_writes_the_shipped_cards(tmp_path):
    from mimofm.experiments.benchmarks_page import PageInputs, benchmarks_page
    from mimofm.models.zoo import shipped_checkpoint

    _eval_json(tmp_path / "eval.json")
    cards = {n: shipped_checkpoint(n).with_suffix(".json") for n in ("fm", "papp", "wifoe")}
    before = {n: p.read_bytes() for n, p in cards.items() if p.exists()}
    page = benchmarks_page(PageInputs(eval=tmp_path / "eval.json"), made="`made here`")
    assert "| zf | 0.500 | 0.500 | 0.476 |" in page and page.rstrip().endswith("`made here`")
    assert {n: p.read_bytes() for n, p in cards.items() if p.exists()} == before
    with pytest.raises(ValueError, match="keep"):
        benchmarks_page(PageInputs(), made="")


def test_configuration_and_frontier_sections_come_from_their_json(tmp_path):
    def row(p, k, n, rate, ratio, t):
        return {
            "group": "sites", "site": "s1", "num_ue": k, "num_bs_ant": n, "snr_db": 10.0, "kind": "precoder",
            "precoder": p, "sum_rate_mean": rate, "ratio_to_wmmse": ratio, "seconds_per_precoder": t,
        }  # fmt: skip

    rows = [
        row("fm", 2, 16, 9.9, 0.99, 3e-5),
        row("zf-wf", 2, 16, 9.0, 0.9, 1e-6),
        row("wmmse", 2, 16, 10, 1, 1e-4),
    ]
    conf = tmp_path / "conf.json"
    conf.write_text(json.dumps({"rows": rows}))
    front = tmp_path / "front.json"
    spec = {"num_ue": 2, "num_bs_ant": 16, "samples": 8, "chunk": 8}
    front.write_text(json.dumps({"rows": rows, "spec": spec, "threads": 2}))
    old = tmp_path / "old.md"
    old.write_text(
        "# x\n\n## Summary\nsummary\n\n3GPP 38.901 tasks T1–T9 rows\n\n## Quality on the held-out\nq\n"
    )
    page = main(["--keep", str(old), "--configurations", str(conf), "--frontier", str(front)])
    assert "## fm and papp on any number of users and antennas" in page
    assert "| sites | 2 | 16 | 0.990 | 0.990 | yes |" in page
    assert "## Rate against CPU time" in page and "10 dB: fm on the frontier" in page


def test_classical_speed_section_shows_ratios_rates_and_the_crossover():
    from mimofm.experiments.benchmarks_page import CLASSICAL_SPEED_HEADING, classical_speed_section

    def row(method, impl, pps, rate, speedup=None):
        r = {
            "method": method,
            "implementation": impl,
            "precision": "single",
            "batch": 1024,
            "precoders_per_second": pps,
            "sum_rate_mean": rate,
        }
        return r | ({"speedup_vs": speedup} if speedup else {})

    doc = {
        "num_ue": 4,
        "num_bs_ant": 64,
        "data": "site (test positions)",
        "snr_db": 10.0,
        "config": {"repeats": 7},
        "machine": {"threads": 1, "processor": "cpu", "torch": "x", "numpy": "y"},
        "rows": [
            row("zf-wf", "mimofm", 300000, 6.08, {"numpy": 2.5}),
            row("zf-wf", "numpy", 120000, 6.08),
            row("rzf-eq", "mimofm", 370000, 6.31, {"numpy": 1.96, "sionna": 3.23}),
            row("rzf-eq", "numpy", 189000, 6.31),
            row("rzf-eq", "sionna", 114000, 6.31),
        ],
    }
    xo = {
        "config": {"iterations": 3},
        "machine": {"threads": 1},
        "rows": [
            {"num_bs_ant": 64, "num_ue": 4, "form": "user", "batch": 256, "seconds_per_precoder": 1e-5},
            {"num_bs_ant": 64, "num_ue": 4, "form": "antenna", "batch": 256, "seconds_per_precoder": 2e-4},
        ],
    }
    text = "\n".join(classical_speed_section(doc, "cmd-a", xo, "cmd-b", "figures/crossover.png"))
    assert text.startswith(CLASSICAL_SPEED_HEADING)
    assert "| zf-wf | 300,000 | 120,000 | 2.50 |  |  | ≥ 1 | 6.0800 | 6.0800 |  |" in text
    assert "| rzf-eq | 370,000 | 189,000 | 1.96 | 114,000 | 3.23 |  | 6.3100 | 6.3100 | 6.3100 |" in text
    assert "| 64 | 20.0 (10 / 200 µs) |" in text and "Batch per call: 256 at N_T = 64" in text
    assert "Command: `cmd-a`" in text and "Command: `cmd-b`" in text and "figures/crossover.png" in text


def test_frontier_section_has_a_subsection_per_configuration(tmp_path):
    def row(p, rate, ratio, t):
        return {
            "site": "s1", "snr_db": 0.0, "kind": "precoder", "precoder": p, "sum_rate_mean": rate,
            "ratio_to_wmmse": ratio, "seconds_per_precoder": t,
        }  # fmt: skip

    files = []
    for k, fast_neural in ((4, False), (16, True)):
        rows = [row("papp", 9.5, 0.95, 1e-6 if fast_neural else 1e-4), row("wmmse-1", 9.7, 0.97, 1e-5)]
        rows.append(row("wmmse", 10, 1, 1e-3))
        f = tmp_path / f"front{k}.json"
        spec = {"num_ue": k, "num_bs_ant": 64, "samples": 8, "chunk": 8}
        f.write_text(json.dumps({"rows": rows, "spec": spec, "threads": 1}))
        files.append(str(f))
    old = tmp_path / "old.md"
    old.write_text("# x\n\n## Summary\ns\n\n3GPP 38.901 tasks T1–T9 rows\n\n## Quality on the held-out\nq\n")
    page = main(["--keep", str(old), "--frontier", *files])
    four, sixteen = page.index("### 4 users × 64 antennas"), page.index("### 16 users × 64 antennas")
    assert four < sixteen
    assert "0 dB: no neural precoder on the frontier" in page[four:sixteen]
    assert "0 dB: papp on the frontier" in page[sixteen:]


def test_an_update_of_a_kept_page_keeps_its_recipe_lines(tmp_path):
    """Every update of a kept page, an --eval one included, lists the earlier commands first."""
    _eval_json(tmp_path / "eval.json")
    old = tmp_path / "old.md"
    old.write_text(
        "# x\n\n## Summary\ns\n\n## fm: the paper's results\nfm table\n\n"
        "## How this page was made\n\n`first command`  \nthen: `second command`\n"
    )
    page = main(["--keep", str(old), "--eval", str(tmp_path / "eval.json")])
    recipe = page[page.index("## How this page was made") :]
    assert recipe.index("`first command`") < recipe.index("then: `second command`") < recipe.index("--eval")
