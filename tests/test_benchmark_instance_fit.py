"""benchmarks/instance_fit.py: resumable records (a line cut short by a kill is ignored) and the report's
means, spreads and paired gains."""

import json

from benchmarks.instance_fit import _done, report


def _rec(seed, plain, fitted):
    side = lambda ap: {"ap50": ap, "ap_sweep": ap / 2, "dice": 0.9, "object_dice": 0.8, "mdice": 0.7}
    return {"job": f"em:full:{seed}", "family": "em", "method": "full", "seed": seed,
            "plain": side(plain), "fitted": side(fitted)}


def test_records_resume_and_report_paired_gains(tmp_path):
    results = tmp_path / "r.jsonl"
    results.write_text(json.dumps(_rec(0, 0.6, 0.7)) + "\n" + json.dumps(_rec(1, 0.8, 0.85)) + "\n"
                       + '{"job": "em:full:2", "fam')
    assert _done(results) == {"em:full:0", "em:full:1"}
    results.write_text("\n".join(results.read_text().splitlines()[:2]))
    table = report(results)
    assert "| em | full | 2 | 0.700 ± 0.100 | 0.775 ± 0.075 | +0.075 (min +0.050) |" in table
