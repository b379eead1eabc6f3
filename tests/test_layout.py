"""The package's shape (issue 12): the layout is the pipeline, imports run one way, every
module fits in one sitting, every study has the same parts and is listed in one place only
(the registry, issue 30 item 3)."""

import ast
import json
import re
import subprocess
import sys

import pytest

import induction_bigram
from induction_bigram.files import dumps_json
from induction_bigram.studies import STUDIES
from tests.conftest import REPO

PACKAGE = REPO / "induction_bigram"
# stage of each top-level part: a module may import its own stage or an earlier one
STAGES = {
    "errors": 0,
    "files": 0,
    "serialise": 0,
    "config": 0,
    "claims": 0,
    "intervals": 0,
    "provenance": 0,
    "data": 1,
    "hooks": 2,
    "model": 3,
    "figures": 4,
    "training": 6,
    "pretrained": 6,
    "anymodel": 7,  # the general analyses; the toy studies call them with their fixed heads
    "memories": 8,
    "incontext": 8,
    "dynamics": 8,  # measures any model against the data's strategies, with anymodel's head scores
    "lengths": 9,
    "markov": 9,  # the hijack against Bayes: trains through training/, measures with anymodel and dynamics
    "studies": 10,
    "sweeps": 11,
    "report": 12,
    "cli": 13,
}
MODULES = sorted(
    p for p in PACKAGE.rglob("*.py") if p.name not in ("__init__.py", "__main__.py") or p.parent != PACKAGE
)


def _part(path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_parts(path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        parts |= {name.split(".")[1] for name in names if name.startswith("induction_bigram.")}
    return parts


def test_every_part_of_the_package_has_a_stage():
    assert {_part(p) for p in MODULES} == set(STAGES)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_one_way_along_the_pipeline(path):
    later = {part for part in _imported_parts(path) if STAGES[part] > STAGES[_part(path)]}
    assert not later, f"{path.relative_to(REPO)} imports the later stage(s) {sorted(later)}"


# what only TransformerLens 3 has: the backend is model/'s business (model/backend.py)
TL3_ONLY = {"HookedTransformer", "HookedTransformerConfig", "transformer_lens.components", "transformer_lens.utils"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_model_stage_names_the_tl_model_class(path):
    if _part(path) in ("model", "hooks"):
        return
    named = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            named |= {node.module} | {f"{node.module}.{a.name}" for a in node.names} | {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            named |= {a.name for a in node.names}
        elif isinstance(node, ast.Name):
            named.add(node.id)
        elif isinstance(node, ast.Attribute):
            named.add(node.attr)
    assert not named & TL3_ONLY, f"{path.relative_to(REPO)} names {sorted(named & TL3_ONLY)}"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(path):
    assert len(path.read_text().splitlines()) <= 400


# one owner for each analysis (issue 27 item 6): each of these is defined in one module only
ONE_OWNER = {
    "repeated_random_tokens": "anymodel/heads.py",
    "score_heads": "anymodel/heads.py",
    "logit_difference": "anymodel/logits.py",
    "restoration_metric": "anymodel/logits.py",
    "path_decomposition": "anymodel/paths.py",
    "score_projections": "anymodel/memory_scores.py",
    "project_readout": "anymodel/projections.py",
    "project_induction": "anymodel/projections.py",
    "project_positions": "anymodel/projections.py",
}


@pytest.mark.parametrize("name", list(ONE_OWNER))
def test_each_analysis_is_defined_once(name):
    owners = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        for node in ast.parse(path.read_text()).body  # module-level functions, not methods
        if isinstance(node, ast.FunctionDef) and node.name == name
    ]
    assert owners == [ONE_OWNER[name]]


def test_every_public_name_of_the_package_exists():
    assert [name for name in induction_bigram.__all__ if not hasattr(induction_bigram, name)] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STUDIES))
def test_every_study_runs_from_its_test_preset_to_a_result_that_round_trips(name, tmp_path):
    study = STUDIES[name]
    result = study.run(study.presets["test"], tmp_path / name, progress=False)
    again = study.result.from_dict(json.loads((tmp_path / name / "result.json").read_text()))
    assert dumps_json(again.to_dict()) == dumps_json(result.to_dict())
    assert again.config == study.presets["test"]
    assert study.figures(again).keys() == study.figures(result).keys()
    assert [c.to_dict() for c in study.claims(again)] == [c.to_dict() for c in study.claims(result)]


def _words(path) -> set[str]:
    """The words of a module's string constants (its docstrings included) and the names it
    imports or uses."""
    words = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            words |= set(re.findall(r"[A-Za-z_][\w-]*", node.value))
        elif isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, ast.alias):
            words |= set(node.name.split("."))
    return words


def _study_packages() -> set[str]:
    """The parts of the package the studies' code lives in (memories, incontext, lengths, ...)."""
    return {study.run.__module__.split(".")[1] for study in STUDIES.values()}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_registry_is_the_only_place_that_lists_the_studies(path):
    """A new study is its folder and one entry in studies.STUDIES: no other module names every
    study (a table, a help text, a preset per study) or imports every study's package."""
    if path == PACKAGE / "studies.py":
        return
    names = {name for study in STUDIES.values() for name in (study.name, study.command.name)}
    assert not names <= _words(path), f"{path.relative_to(REPO)} names every study; read studies.STUDIES instead"
    packages = _study_packages()
    assert len(packages) < 2 or not packages <= _imported_parts(path), f"{path.relative_to(REPO)} imports every study"


def test_the_registry_check_finds_a_module_that_lists_the_studies(tmp_path):
    listing = tmp_path / "listing.py"
    listing.write_text(f"HELP = 'one of: {', '.join(STUDIES)}'\n")
    assert set(STUDIES) <= _words(listing)


@pytest.mark.parametrize("name", list(STUDIES))
def test_every_registry_entry_is_whole(name):
    """Its key is its name; its command reads a run exactly when it has an analysis; every
    report preset it names exists, as does each of its presets named there, and it names quick."""
    from induction_bigram.report.reproduce import SETTINGS

    study = STUDIES[name]
    assert study.name == name and study.command.reads_run == (study.analyse is not None)
    assert "quick" in study.reproduce and set(study.reproduce) <= set(SETTINGS)
    for preset in study.reproduce:
        assert type(study.report_config(preset)) is study.config_type
    commands = [s.command.name for s in STUDIES.values()]
    assert len(set(commands)) == len(commands)


LINTED = ["induction_bigram", "tests", "benchmarks", "scripts", "notebooks"]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_the_code_and_the_notebooks_pass_ruff(command):
    """pyproject.toml's ruff settings hold everywhere, the notebooks' cells included."""
    done = subprocess.run([sys.executable, "-m", "ruff", *command, *LINTED], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
