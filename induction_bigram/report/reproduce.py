"""One command that reruns every study and writes ``REPORT.md`` (``induction-bigram reproduce``).

Studies, each in its own folder under the output directory:

1. ``training``: train the induction head (``quick`` preset, or ``reference``), then its
   memory report and figures; claims: it learns the task, the memories form in the order
   W_O^2, W_K^2, W_K^1, and W_K^1 learns its first positions first (docs/THEORY.md section 3).
2. ``memories``: the theory-built model at the reference shape, and trained against
   theory-built memories across d.
3. ``hijack``: an associative memory transformer and the in-context against bigram study
   (docs/THEORY.md sections 5 and 6).
4. ``lengths``: APE against RPE (and RoPE, NoPE) on long prompts (section 5, item 6).

Each claim of docs/THEORY.md is listed in the report with the measured number and whether it held.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from induction_bigram.config import ModelConfig, RunConfig, TaskConfig, preset
from induction_bigram.data.stats import BigramStats
from induction_bigram.data.task import TriggerTask
from induction_bigram.figures import attention_view, save_figure, save_figures, save_view
from induction_bigram.files import Existing, atomic_write_text, claim_folder, dumps_json
from induction_bigram.incontext.figures import hijack_figures
from induction_bigram.incontext.study import HijackStudyConfig, run_hijack_study
from induction_bigram.lengths import MAIN_VARIANTS, LengthsStudyConfig, lengths_preset, run_lengths_study
from induction_bigram.lengths.figures import lengths_attention_view, lengths_figures
from induction_bigram.memories.capacity import compare_across_widths
from induction_bigram.memories.figures import memory_figures, plot_capacity
from induction_bigram.memories.projections import build_theory_model, memory_projections, memory_report, track_memories
from induction_bigram.training.loop import MetricsRecord, train_or_load
from induction_bigram.training.metrics import evaluate

REPORT = "REPORT.md"


@dataclass
class Claim:
    """One statement of docs/THEORY.md, the number that tests it, and whether it held."""

    section: str
    statement: str
    measured: str
    held: bool | None  # None: reported, no pass/fail threshold


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class ReproduceSettings:
    """How big each study is; ``quick`` fits in 15 minutes on a 2-core CPU."""

    training: RunConfig
    capacity_widths: tuple[int, ...]
    capacity_recipe: RunConfig
    amt: RunConfig
    hijack: HijackStudyConfig
    lengths: LengthsStudyConfig

    @classmethod
    def make(cls, quick: bool) -> "ReproduceSettings":
        if quick:
            return cls(
                training=preset("quick").with_overrides({"train.eval_every": 50}),
                capacity_widths=(16, 32, 64),
                capacity_recipe=preset("quick").with_overrides({"train.steps": 800, "train.eval_every": 400}),
                amt=preset("amt"),
                hijack=HijackStudyConfig(per_cell=12, patch_prompts=16),
                lengths=lengths_preset("cpu"),
            )
        return cls(
            training=preset("reference").with_overrides({"train.compile": True}),
            capacity_widths=(16, 32, 64, 128, 256),
            capacity_recipe=preset("quick"),
            amt=preset("amt"),
            hijack=HijackStudyConfig(),
            lengths=replace(lengths_preset("cpu"), variants=(*MAIN_VARIANTS, "rope-nobias")),
        )


def strictly_ordered(steps: list[int | None]) -> bool | None:
    """Whether events happened in the listed order: True when the steps strictly increase,
    False when some later event came first, None when the evaluation interval cannot tell
    (two at the same evaluated step) or an event never happened."""
    if None in steps:
        return None
    pairs = list(zip(steps, steps[1:]))
    if any(a > b for a, b in pairs):
        return False
    return True if all(a < b for a, b in pairs) else None


def first_step(metrics: list[MetricsRecord], value: Callable[[MetricsRecord], float], level: float) -> int | None:
    """The first evaluated step at which ``value(record) >= level`` (None if never)."""
    return next((r["step"] for r in metrics if "memories" in r and value(r) >= level), None)


def study_training(out: Path, settings: ReproduceSettings, stats: BigramStats, progress: bool) -> Section:
    section = Section("Training the induction head")
    config = settings.training
    result = train_or_load(config, out / "run", progress=progress, track=[track_memories])
    task = TriggerTask(stats, config.task)
    report = memory_report(result.model, task.shared_triggers, config.task.seq_len)
    projections = memory_projections(result.model, task.shared_triggers, config.task.seq_len)
    figures = memory_figures(projections, stats.vocab, result.metrics)
    save_figures(figures, out)
    prompt = stats.encode("First Citizen:\nBefore we proceed any further, hear me speak.\nAll:\nSpeak, speak.")
    save_view(attention_view(result.model, prompt[: config.task.seq_len], stats), out / "attention.html")
    section.figures = list(figures)
    final = result.final
    section.numbers = {"config": config.to_dict(), "final": final, "memories": report.to_dict()}
    section.text = [
        f"d = {config.model.d_model}, T = {config.task.seq_len}, "
        f"K = {config.task.n_triggers}, {config.train.optimizer} lr {config.train.lr}, batch "
        f"{config.train.batch_size}, {config.train.steps} steps, {final['elapsed_seconds']:.0f} s.",
        "```",
        str(report),
        "```",
        "Attention of both heads on a Shakespeare prompt: `training/attention.html` (offline circuitsvis).",
    ]
    acc = final["in_context_accuracy"]
    section.claims.append(
        Claim("2", "the two-layer model learns the in-context task", f"in-context accuracy {acc:.3f}", acc >= 0.95)
    )
    rise = {  # half way is a level every memory reaches, whatever its final recall
        "W_O2": first_step(result.metrics, lambda r: r["memories"]["W_O2"]["recall"], 0.5),
        "W_K2": first_step(result.metrics, lambda r: r["memories"]["W_K2"]["recall"], 0.5),
        "W_K1 (first 64)": first_step(result.metrics, lambda r: r["memories"]["W_K1"]["recall_first64"], 0.5),
        "W_K1 (all)": first_step(result.metrics, lambda r: r["memories"]["W_K1"]["recall"], 0.5),
    }
    section.numbers["first_step_recall_0.5"] = rise
    order = strictly_ordered([rise["W_O2"], rise["W_K2"], rise["W_K1 (first 64)"]])
    tie = " (a tie at this evaluation interval cannot tell the order)" if order is None else ""
    section.claims.append(
        Claim(
            "3",
            "the memories form in the order W_O^2, then W_K^2, then W_K^1",
            "first evaluated step with recall >= 0.5: " + ", ".join(f"{k} {v}" for k, v in rise.items()) + tie,
            order,
        )
    )
    early, late = rise["W_K1 (first 64)"], rise["W_K1 (all)"]
    testable = config.task.seq_len > 64  # with T <= 64 the first 64 positions are all of them
    section.claims.append(
        Claim(
            "3",
            "W_K^1 learns early positions first",
            f"first 64 positions at step {early}, all {config.task.seq_len} positions at step {late}",
            (early is not None and (late is None or early < late)) if testable else None,
        )
    )
    return section


def study_memories(out: Path, settings: ReproduceSettings, stats: BigramStats, progress: bool) -> Section:
    section = Section("The three memories: theory-built against trained")
    task_cfg = TaskConfig(seq_len=256, n_triggers=5)
    task = TriggerTask(stats, task_cfg)
    theory = build_theory_model(
        ModelConfig(d_model=256, n_ctx=256, d_vocab=stats.n_tokens),
        task.shared_triggers,
        device="cpu",
        vocab=stats.vocab,
    )
    report = memory_report(theory, task.shared_triggers)
    acc = evaluate(theory, task, batch_size=512, seed=12345).in_context_accuracy
    recalls = {name: score.recall for name, score in report.memories.items()}
    section.claims.append(
        Claim(
            "3",
            "memories written from the theory solve the task without training (d = T = 256)",
            f"in-context accuracy {acc:.3f}, recalls {recalls}",
            acc >= 0.98 and all(v == 1.0 for v in recalls.values()),
        )
    )
    rows = compare_across_widths(settings.capacity_widths, settings.capacity_recipe, progress=progress)
    save_figure(plot_capacity(rows), out / "capacity.png")
    section.figures = ["capacity.png"]
    section.numbers = {
        "theory_model": {"accuracy": acc, "memories": report.to_dict()},
        "capacity": [r.to_dict() for r in rows],
    }
    section.text = [
        "| d | trained accuracy | theory-built accuracy | trained W_O2 / W_K2 / W_K1 cosine |",
        "|---|---|---|---|",
    ]
    section.text += [
        f"| {r.d_model} | {r.trained_accuracy:.3f} | {r.theory_accuracy:.3f} | "
        + " / ".join(f"{r.trained[m]['cosine']:.2f}" for m in r.trained)
        + " |"
        for r in rows
    ]
    beats = [r.d_model for r in rows if r.trained_accuracy > r.theory_accuracy]
    section.claims.append(
        Claim(
            "3",
            "near capacity (small d) trained memories can beat the naive ideal form",
            f"trained accuracy above theory-built at d = {beats or 'none'}",
            None,
        )
    )
    return section


def study_hijack(out: Path, settings: ReproduceSettings, stats: BigramStats, progress: bool) -> Section:
    section = Section("In-context against bigram")
    config = settings.amt
    result = train_or_load(config, out / "run", progress=progress)
    triggers = TriggerTask(stats, config.task).shared_triggers
    study = run_hijack_study(result.model, stats, triggers, config.task.seq_len, settings.hijack, progress)
    summary = study.summary()
    best = next(r for r in study.check.rungs if r.name == study.check.best)
    figures = hijack_figures(study, stats.vocab)
    save_figures(figures, out)
    section.figures = list(figures)
    section.numbers = {"config": config.to_dict(), "final": result.final, **summary}
    section.text = [
        f"Associative memory transformer (d = T = {config.model.d_model}, linear W_F, outputs drawn from "
        f"pi_b(. | q)): in-context accuracy "
        f"{result.final['in_context_accuracy']:.3f}, bigram loss {result.final['bigram_loss']:.3f} nats, "
        f"global-memory KL {summary['global_memory_kl']:.3f} nats.",
        "",
        "| rung | held-out R^2 per prompt | per cell | rank agreement |",
        "|---|---|---|---|",
    ]
    section.text += [f"| {r.name} | {r.r2:.3f} | {r.r2_cells:.3f} | {r.spearman:.3f} |" for r in study.check.rungs]
    check = study.check
    section.claims += [
        Claim(
            "5",
            "the in-context term follows the predicted logits (held-out R^2 >= 0.9)",
            f"{best.name}: R^2 {best.r2:.3f} per prompt, {best.r2_cells:.3f} per (T, n) cell",
            best.r2 >= 0.9,
        ),
        Claim(
            "5.1",
            "xi_o^IC grows with the count n",
            f"rank agreement {check.growth['mean_spearman']:.2f}, monotone {check.growth['increasing_in_n']}",
            check.growth["mean_spearman"] > 0.5,
        ),
        Claim(
            "5.2",
            "for fixed counts xi^IC shrinks as the prompt grows",
            f"rank agreement {check.dilution['mean_spearman']:.2f}, monotone {check.dilution['decreasing_in_T']}",
            check.dilution["mean_spearman"] > 0.5,
        ),
        Claim(
            "5.3",
            "two outputs share the in-context term as n_a : n_b",
            f"R^2 of the share {check.split['r2']:.2f}",
            check.split["r2"] > 0.5,
        ),
        Claim(
            "5.4",
            "the in-context output overtakes the global favourite at a threshold n*",
            f"measured/predicted n* by T: {check.hijack}",
            None,
        ),
        Claim(
            "5.5",
            "with n = 0 the prediction falls back to the global bigram",
            f"top-1 = g in {check.fallback['top1_is_favourite']:.2f} of prompts",
            check.fallback["top1_is_favourite"] > 0.5,
        ),
        Claim(
            "6",
            "patching the layer-2 head output at the last position restores nearly all the logit difference",
            f"{summary['patch_restore_layer2_head']:.3f}",
            summary["patch_restore_layer2_head"] >= 0.9,
        ),
        Claim(
            "6",
            "patching layer 1 after each q restores it through the previous-token path (earlier q's removed)",
            f"{summary['patch_restore_layer1_after_trigger']:.3f}",
            summary["patch_restore_layer1_after_trigger"] >= 0.5,
        ),
        Claim("6", "patching the FFN output moves the global part", f"{summary['patch_restore_ffn_last']:.3f}", None),
    ]
    return section


def study_lengths(out: Path, settings: ReproduceSettings, stats: BigramStats, progress: bool) -> Section:
    section = Section("Positional encodings and long prompts")
    result = run_lengths_study(settings.lengths, out, progress=progress)
    figures = lengths_figures(result)
    save_figures(figures, out)
    save_view(lengths_attention_view(result), out / "lengths_attention.html", title="attention by variant")
    data = result.to_dict()
    section.figures = list(figures)
    section.numbers = data
    variants = {**data["variants"], **data.get("extra_variants", {})}
    section.text = [
        f"Trained at T_train = {settings.lengths.train_length} (d = {settings.lengths.d_model}, "
        f"{settings.lengths.steps} steps); in-context accuracy on the last window of prompts of length "
        "k T_train whose first (k - 1) T_train positions hold no trigger (oversight) or the trigger process "
        "throughout (ordinary).",
        "",
        "| variant | oversight 1x / 2x / 3x / 4x | ordinary 1x / 2x / 3x / 4x |",
        "|---|---|---|",
        *(
            f"| {name} | {' / '.join(f'{v:.2f}' for v in r['accuracy_by_length'].values())} | "
            f"{' / '.join(f'{v:.2f}' for v in r['ordinary_accuracy_by_length'].values())} |"
            for name, r in variants.items()
        ),
        "",
        "Layer-1 attention of every variant on the same prompt: `lengths/lengths_attention.html`.",
    ]
    ape, rpe = variants["ape"]["accuracy_by_length"], variants["rpe"]["accuracy_by_length"]
    section.claims += [
        Claim(
            "4, 5.6",
            "with RPE the previous-token head works beyond T_train (2x accuracy >= 0.9)",
            f"rpe 2x {rpe['2x']:.3f}",
            rpe["2x"] >= 0.9,
        ),
        Claim(
            "4, 5.6",
            "with APE evidence beyond T_train is overlooked (2x at least 0.3 below 1x)",
            f"ape 1x {ape['1x']:.3f}, 2x {ape['2x']:.3f}",
            ape["2x"] <= ape["1x"] - 0.3,
        ),
        Claim(
            "5.6",
            "on ordinary long prompts APE still looks fine",
            f"ape ordinary 2x {variants['ape']['ordinary_accuracy_by_length']['2x']:.3f}",
            variants["ape"]["ordinary_accuracy_by_length"]["2x"] >= 0.9,
        ),
        Claim(
            "5.6",
            "rotary in layer 1 / NoPE (reported)",
            "; ".join(
                f"{name} " + " / ".join(f"{v:.2f}" for v in variants[name]["accuracy_by_length"].values())
                for name in ("rope", "nope")
            ),
            None,
        ),
    ]
    return section


STUDIES: dict[str, Callable[[Path, ReproduceSettings, BigramStats, bool], Section]] = {
    "training": study_training,
    "memories": study_memories,
    "hijack": study_hijack,
    "lengths": study_lengths,
}


def reproduce(
    out_dir: str | Path,
    *,
    quick: bool = False,
    studies: list[str] | None = None,
    progress: bool = True,
    settings: ReproduceSettings | None = None,
    existing: Existing = "resume",
) -> Path:
    """Run the studies into ``out_dir`` and write ``out_dir/REPORT.md`` and ``numbers.json``.

    Runs already finished in ``out_dir`` are loaded, not retrained (``existing="resume"``);
    ``"overwrite"`` retrains them, ``"refuse"`` refuses a folder that holds a report. The
    folder is held with :func:`~induction_bigram.files.claim_folder` (never a training run or
    a folder of someone else's). ``settings`` overrides the sizes that ``quick`` chooses.
    """
    with claim_folder(out_dir, "reproduce", existing=existing) as out_dir:
        return _reproduce(out_dir, quick, studies, progress, settings)


def _reproduce(
    out_dir: Path,
    quick: bool,
    studies: list[str] | None,
    progress: bool,
    settings: ReproduceSettings | None,
) -> Path:
    settings = settings or ReproduceSettings.make(quick)
    stats = BigramStats.default()
    sections = {}
    for name in studies or list(STUDIES):
        began = time.perf_counter()
        torch.manual_seed(0)
        sections[name] = STUDIES[name](out_dir / name, settings, stats, progress)
        sections[name].seconds = time.perf_counter() - began
    numbers = {name: s.numbers for name, s in sections.items()}
    numbers["seconds"] = {name: s.seconds for name, s in sections.items()}
    atomic_write_text(out_dir / "numbers.json", dumps_json(numbers) + "\n")
    atomic_write_text(out_dir / REPORT, render_report(sections, quick))
    return out_dir / REPORT


def render_report(sections: dict[str, Section], quick: bool) -> str:
    device = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    )
    total = sum(s.seconds for s in sections.values())
    lines = [
        "# induction-bigram: reproduction report",
        "",
        f"Mode: {'quick' if quick else 'full'}; device: {device}; total {total / 60:.1f} min "
        f"({', '.join(f'{n} {s.seconds / 60:.1f}' for n, s in sections.items())}).",
        "",
        "## Claims of docs/THEORY.md",
        "",
        "| section | claim | measured | held |",
        "|---|---|---|---|",
    ]
    for s in sections.values():
        for c in s.claims:
            held = {True: "yes", False: "**no**", None: "reported"}[c.held]
            lines.append(f"| {c.section} | {c.statement} | {c.measured} | {held} |")
    for name, s in sections.items():
        lines += ["", f"## {s.title}", "", *s.text, ""]
        lines += [f"![{fig}]({name}/{fig})" for fig in s.figures]
    lines += ["", "All numbers: `numbers.json`."]
    return "\n".join(lines) + "\n"
