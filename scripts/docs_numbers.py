"""Write the generated blocks of README.md and docs/, each between its markers ``<!-- NAME -->``
and ``<!-- /NAME -->``, in the page that :data:`PAGES` names for it:

- ``what-holds`` (README.md): the findings that hold, fail and are undecided, from
  docs/report-quick/numbers.json;
- ``report-claims`` / ``incontext-paths`` (docs/results.md): the claims table and which mechanism
  carries the in-context signal, from the same file;
- ``incontext-idealised`` (docs/results.md): the idealised twin beside the trained model,
  docs/report-idealised/numbers.json (``reproduce --preset idealised``: ``quick`` leaves the twin out);
- ``shipped-models`` (docs/results.md): the shipped models as their own config, metrics and
  source files record them;
- ``capacity-law-table`` / ``capacity-law-per-n`` and their ``-fixed-`` twins (docs/results.md):
  the transitions of the capacity-law sweeps, docs/capacity_law.json and docs/capacity_law_fixed.json;
- ``corpus-counts`` (docs/guide.md): the shipped tiny-Shakespeare counts,
  induction_bigram/data/tinyshakespeare.json;
- ``induction-opportunity`` (docs/THEORY.md section 3.8): how much tiny Shakespeare rewards
  copying, docs/induction_opportunity.json (scripts/induction_opportunity.py's output);
- ``markov-summary`` (README.md) and ``markov-analyses`` (docs/guide.md): the shipped ``markov``
  model's phases (its metrics.jsonl) and what the any-model analyses find in it,
  docs/markov_analyses.json (scripts/markov_analyses.py's output).

    .venv/bin/python scripts/docs_numbers.py

The documents' numbers come from these files, never typed by hand; tests/test_readme.py checks
that each block is what this script writes, and that it sits in its page.
"""

import json
from collections.abc import Callable
from pathlib import Path

from induction_bigram.data.stats import BigramStats
from induction_bigram.incontext.in_words import idealised_in_words
from induction_bigram.report.render import readme_claims, readme_paths, readme_shipped_models, readme_what_holds
from induction_bigram.sweeps.capacity_law import CapacityLaw

REPO = Path(__file__).resolve().parent.parent
NUMBERS = REPO / "docs" / "report-quick" / "numbers.json"
IDEALISED = REPO / "docs" / "report-idealised" / "numbers.json"
LAW = REPO / "docs" / "capacity_law.json"
LAW_FIXED = REPO / "docs" / "capacity_law_fixed.json"
OPPORTUNITY = REPO / "docs" / "induction_opportunity.json"
MARKOV = REPO / "docs" / "markov_analyses.json"


def _numbers(path: Path = NUMBERS) -> dict:
    return json.loads(path.read_text())


def _law(path: Path) -> CapacityLaw:
    return CapacityLaw.from_dict(json.loads(path.read_text()))


def corpus_counts() -> str:
    stats = BigramStats.default()
    return (
        f"N = {stats.n_tokens} characters, {int(stats.unigram_counts.sum()):,} characters of text, "
        f"{int(stats.bigram_counts.sum()):,} adjacent pairs"
    )


def induction_opportunity() -> str:
    rows = json.loads(OPPORTUNITY.read_text())["rows"]
    lines = [
        "| m matched | positions with an earlier match | copy right there | trigram right there |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['match']} | {r['applies']:.1%} | {r['copy_right']:.1%} | {r['trigram_right']:.1%} |" for r in rows]
    return "\n".join(lines)


def _markov_phase() -> tuple[dict, dict, dict]:
    """The shipped markov run's first transition record, its last record, and its analyses."""
    from induction_bigram.dynamics import run_dynamics
    from induction_bigram.pretrained import pretrained_metrics

    records = pretrained_metrics("markov")
    steps, _, phases = run_dynamics(records)
    first = phases.transitions[0]
    at = records[steps.index(first.step)]
    return {**at, "before": first.before, "after": first.after}, records[-1], json.loads(MARKOV.read_text())


def _heads(trained: dict) -> str:
    return ", ".join(f"L{layer}H{head}" for layer, head in trained["statistical_induction_heads"])


def markov_summary() -> str:
    at, last, analyses = _markov_phase()
    trained, untrained = analyses["trained"], analyses["untrained"]
    pair = trained["pair"]
    floors = trained["chains"]["floors"]
    alphas = [a for attention in trained["occurrence_attention"].values() for a in attention["alpha_eff"]]
    per_head = [p["restored_last"] for p in trained["patching"]["per_head"].values()]
    return (
        f"The held-out KL curves of the shipped `markov` model (seed 0) move from `{at['before']}` to "
        f"`{at['after']}` at step {at['step']}, after {at['elapsed_seconds']:.0f} s of training on one thread of a "
        f"2-core machine, when its best statistical induction head scores "
        f"{at['statistical_induction']['score']:.2f} (a uniform head: {at['statistical_induction']['chance']:.2f}); "
        f"at step {last['step']} its held-out excess loss over Bayes is {last['excess_ratio']:.3f} of the global "
        f"bigram's. `find_head_pairs` on its chains finds previous-token L{pair['previous_token'][0]}H"
        f"{pair['previous_token'][1]} ({pair['previous_token_score']:.2f}, floor {floors['previous_token']:.2f}) "
        f"-> induction L{pair['induction'][0]}H{pair['induction'][1]} ({pair['induction_score']:.2f}, floor "
        f"{floors['induction']:.2f}), and every layer-1 head ({_heads(trained)}) above the floor: each puts "
        f"n / (n + alpha_eff) of its attention on the n positions after earlier occurrences of the current token, "
        f"alpha_eff {min(alphas):.1f} to {max(alphas):.1f} (Bayes: n / (n + alpha), alpha = {trained['alpha']:g}), "
        f"spread over them instead of on the latest. Patched alone, a head restores {min(per_head):.2f} to "
        f"{max(per_head):.2f} of the clean logit difference, the whole layer at the last position "
        f"{trained['patching']['last_layer_at_last_position']:.2f}. The untrained twin: "
        f"{'nothing found' if not untrained['found'] else 'a pair found'}."
    )


def markov_hijack() -> str:
    """The quick report's markov study: per alpha, the seeds whose model has a statistical
    induction head, the excess-loss ratio and n* against Bayes (means and 95% t intervals)."""
    numbers = _numbers()
    (row,) = numbers["markov"]["seeds"]
    seeds = row["n"]

    def value(key: str) -> str:
        if f"{key}.mean" not in row:
            return "-"
        mean, low, high = (row[f"{key}.{part}"] for part in ("mean", "low", "high"))
        return f"{mean:.2f} [{low:.2f}, {high:.2f}]"

    alphas = sorted({key.split(".")[0] for key in row if key.endswith(".has_head.mean")}, key=float)
    lines = [
        f"The `markov` study of the quick report (`reproduce --preset quick`, {seeds} seeds; one small model per "
        "alpha, n* on designed prompts (the pairs chosen for every alpha; docs/THEORY.md section 9.4); 95% t "
        "intervals of per-seed means; '-': no head, so no n*):",
        "",
        "| alpha | seeds with a statistical induction head | excess loss over Bayes / global bigram's | "
        "n* Bayes, every pair | n* model, every pair | mean abs(n* model - n* Bayes), the alpha's own pairs |",
        "|---|---|---|---|---|---|",
    ]
    for alpha in alphas:
        heads = round(row[f"{alpha}.has_head.mean"] * seeds)
        lines.append(
            f"| {alpha} | {heads} of {seeds} | {value(f'{alpha}.excess_ratio')} | {value(f'{alpha}.n_star_bayes')} | "
            f"{value(f'{alpha}.n_star_model')} | {value(f'{alpha}.n_star_gap')} |"
        )
    return "\n".join(lines)


def markov_analyses() -> str:
    _, _, analyses = _markov_phase()
    trained = analyses["trained"]
    lines = ["| head | n_q | queries | attention on the n_q positions | alpha_eff | share on the latest | evenness |"]
    lines.append("|---|---|---|---|---|---|---|")
    for name, a in trained["occurrence_attention"].items():
        for i, n in enumerate(a["counts"]):
            if n in (1, 2, 4, 8, 16):
                lines.append(
                    f"| {name} | {n} | {a['queries'][i]} | {a['on_matches'][i]:.2f} | {a['alpha_eff'][i]:.2f} | "
                    f"{a['latest'][i]:.2f} | {a['evenness'][i]:.2f} |"
                )
    memories = "; ".join(
        f"{name}: W_O2 {m['W_O2']['recall']:.2f}, W_K2 {m['W_K2']['recall']:.2f}, W_K1 {m['W_K1']['recall']:.2f}"
        for name, m in trained["memories"].items()
    )
    paths = trained["paths"]
    by_source = paths["by_source"]
    heads = [f"L{layer}H{head}" for layer, head in trained["statistical_induction_heads"]]
    in_context = sum(by_source[f"{h}/direct"] for h in heads)
    lines += [
        "",
        f"Memory recall@1 of each pair (previous-token head, layer-1 head): {memories}. "
        f"The W_O2 readouts of the {len(heads)} heads summed: recall {trained['summed_readout']['recall']:.2f}, "
        f"margin {trained['summed_readout']['margin']:.2f}.",
        "",
        f"Path split at {paths['positions']} chain positions where the context's most frequent successor of q "
        f"differs from the global bigram's favourite: the model prefers the context's at "
        f"{paths['model_prefers_in_context']:.0%} of them (mean logit difference {paths['model_difference']:.2f}); "
        f"the layer-1 heads' direct paths give {in_context:+.2f} together, "
        f"the current token's {by_source['token/direct']:+.2f}, "
        f"the biases {by_source['biases/direct']:+.2f}.",
        "",
        f'Patching on prompts with one earlier "q o" (clean - corrupted gap {trained["patching"]["gap"]["gap"]:.2f}): '
        + ", ".join(f"{name} {p['restored_last']:.2f}" for name, p in trained["patching"]["per_head"].items())
        + f"; the whole last layer at the last position {trained['patching']['last_layer_at_last_position']:.2f}.",
    ]
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[], str]] = {
    "what-holds": lambda: readme_what_holds(_numbers()),
    "report-claims": lambda: readme_claims(_numbers()),
    "incontext-paths": lambda: readme_paths(_numbers()),
    "incontext-idealised": lambda: idealised_in_words(_numbers(IDEALISED)),
    "shipped-models": readme_shipped_models,
    "capacity-law-table": lambda: _law(LAW).table(),
    "capacity-law-per-n": lambda: _law(LAW).per_n_table(),
    "capacity-law-fixed-table": lambda: _law(LAW_FIXED).table(),
    "capacity-law-fixed-per-n": lambda: _law(LAW_FIXED).per_n_table(),
    "corpus-counts": corpus_counts,
    "induction-opportunity": induction_opportunity,
    "markov-summary": markov_summary,
    "markov-analyses": markov_analyses,
    "markov-hijack": markov_hijack,
}
PAGES: dict[str, str] = {
    "what-holds": "README.md",
    "report-claims": "docs/results.md",
    "incontext-paths": "docs/results.md",
    "incontext-idealised": "docs/results.md",
    "shipped-models": "docs/results.md",
    "capacity-law-table": "docs/results.md",
    "capacity-law-per-n": "docs/results.md",
    "capacity-law-fixed-table": "docs/results.md",
    "capacity-law-fixed-per-n": "docs/results.md",
    "corpus-counts": "docs/guide.md",
    "induction-opportunity": "docs/THEORY.md",
    "markov-summary": "README.md",
    "markov-analyses": "docs/guide.md",
    "markov-hijack": "README.md",
}
"""Block -> the page (relative to the repository) that holds it, once."""


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name} -->", f"<!-- /{name} -->"


def block(name: str) -> str:
    start, end = markers(name)
    return f"{start}\n{BLOCKS[name]()}\n{end}"


def main() -> None:
    for page in sorted(set(PAGES.values())):
        path = REPO / page
        text = path.read_text()
        for name in (n for n, p in PAGES.items() if p == page):
            start, end = markers(name)
            before, rest = text.split(start, 1)
            text = before + block(name) + rest.split(end, 1)[1]
        path.write_text(text)


if __name__ == "__main__":
    main()
