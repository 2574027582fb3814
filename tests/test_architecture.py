"""The architecture the code promises, checked on the code itself.

* A regime's names (its name, its inputs' keys, suffixes and older names, its
  tasks' names) appear in the code only in its own module and in the
  registry: everything else asks the registry. A name two regimes share (an
  older name one of them declares, ``aliases`` or ``suffix_aliases``, that is
  the other's own: the interface layer's old suffix "scribbles" is the fg/bg
  scribbles' key) may be spelt in both their modules. A name that is also a
  word of the engine's shared vocabulary (a head role such as "foreground", a
  layer type such as "points", a decoder path) is not a regime's own: the
  points + mask regime's columns are called so, and the roles are spelt everywhere.
* ``Trainer(`` is constructed in one place of the package: the training recipe.

(The layers themselves, and the absence of import cycles, are import-linter
contracts in pyproject.toml; the README's test command runs ``lint-imports``.)
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import napari_lazylabels
from napari_lazylabels.engine.regimes import registry
from napari_lazylabels.engine.regimes.base import LAYER_TYPES
from napari_lazylabels.engine.tasks import FEATURE_PATHS, HEAD_ROLES

PACKAGE = Path(napari_lazylabels.__file__).parent
ROOT = PACKAGE.parents[1]
REGISTRY = PACKAGE / "engine" / "regimes" / "registry.py"
#: Words of the engine's shared vocabulary, never a regime's own name.
SHARED_WORDS = frozenset({*HEAD_ROLES, *LAYER_TYPES, *FEATURE_PATHS})


def _code_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "benchmarks").rglob("*.py")) + \
        sorted((ROOT / "scripts").glob("*.py"))


def _names_of(regime) -> set[str]:
    names = {regime.name, *regime.task_names}
    for i in regime.inputs:
        names |= {i.key, *i.suffixes}
    return names - SHARED_WORDS


def _old_names_of(regime) -> set[str]:
    """The older names a regime's inputs declare (still read, so spelt in its module)."""
    return {n for i in regime.inputs for n in (*i.aliases, *i.suffix_aliases)}


def _module_of(regime) -> Path:
    return Path(__import__(type(regime).__module__, fromlist=["_"]).__file__)


def _mentions(path: Path, names: set[str]) -> list[str]:
    """String literals equal to one of ``names``, and identifiers spelling one in capitals
    (``DETECTION``): the ways code names a regime (prose in docstrings is not code)."""
    found = []
    capitals = {n.upper() for n in names}
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.STRING:
            try:
                value = ast.literal_eval(tok.string)
            except (ValueError, SyntaxError):
                continue
            if isinstance(value, str) and value in names:
                found.append(f"{path.name}:{tok.start[0]}: {tok.string}")
        elif tok.type == tokenize.NAME and tok.string in capitals:
            found.append(f"{path.name}:{tok.start[0]}: {tok.string}")
    return found


def test_a_regime_is_named_only_in_its_module_and_the_registry():
    regimes = registry.regimes()
    assert regimes, "no regime registered"
    declared = {_module_of(r): _names_of(r) | _old_names_of(r) for r in regimes}
    problems = []
    for regime in regimes:
        own = _module_of(regime)
        names = _names_of(regime)
        for path in _code_files():
            if path in (own, REGISTRY):
                continue
            problems += _mentions(path, names - declared.get(path, set()))
    assert not problems, "regimes named outside their module and the registry:\n" + "\n".join(problems)


def test_the_check_finds_a_named_regime(tmp_path):
    regime = registry.regimes()[0]
    bad = tmp_path / "bad.py"
    bad.write_text(f'"""Prose may say {regime.name}."""\nx = labels[{regime.inputs[0].key!r}]\n')
    assert len(_mentions(bad, _names_of(regime))) == 1


def test_a_shared_name_is_the_only_exception():
    """Where an older name of one regime is another's own (the interfaces' old layer suffix is the
    fg/bg scribbles' key), each of the two modules may spell it, and nothing else of the other."""
    regimes = registry.regimes()
    shared = [(a, b, n) for a in regimes for b in regimes if a is not b
              for n in _old_names_of(a) & _names_of(b)]
    assert shared, "no older name is another regime's name: the exception is not needed"
    for a, b, name in shared:
        for owner, other in ((a, b), (b, a)):
            allowed = _names_of(owner) | _old_names_of(owner)
            rest = _names_of(other) - allowed
            assert name in allowed and name not in rest
            assert not _mentions(_module_of(owner), rest)


def test_the_trainer_is_built_only_by_the_recipe():
    recipe = PACKAGE / "recipes" / "train.py"
    builders = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.id if isinstance(fn, ast.Name) else fn.attr if isinstance(fn, ast.Attribute) else None
                if name == "Trainer":
                    builders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert builders == [f"{recipe.relative_to(ROOT)}:{line}" for line in _lines(recipe, "Trainer(")]
    assert len(builders) == 1


def _lines(path: Path, text: str) -> list[int]:
    return [i for i, line in enumerate(path.read_text().splitlines(), 1)
            if text in line and not line.lstrip().startswith(("#", '"', "'")) and "class " not in line]


def test_the_models_post_processing_is_taken_in_one_place():
    """A prediction's settings are resolved where it starts (``PredictionSpec.resolve``): the model's
    post-processing is read as a default there and nowhere else, and every back-end takes the spec."""
    spec = PACKAGE / "engine" / "prediction_spec.py"
    found = [f"{path.relative_to(ROOT)}:{line}" for path in sorted(PACKAGE.rglob("*.py"))
             for line in _lines(path, "or model.postprocess")]
    assert found == [f"{spec.relative_to(ROOT)}:{line}" for line in _lines(spec, "or model.postprocess")]
    assert len(found) == 1


#: The most lines a source file of the package may have: more is several modules in one.
MAX_LINES = 500


def test_no_source_file_is_over_500_lines():
    long = {str(path.relative_to(ROOT)): n for path in sorted(PACKAGE.rglob("*.py"))
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these along their jobs (at most {MAX_LINES} lines a file): {long}"
