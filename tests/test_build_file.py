"""The top-level Bazel BUILD file agrees with the source tree.

Bazel cannot build this project offline, so BUILD is *checked, not built*: this
module reads BUILD with Python's ``ast`` (the Starlark subset BUILD uses is
Python syntax), evaluates the ``py_library`` / ``py_test`` / ``py_binary`` calls
and compares them with the files on disk.

Every check is a function of ``(targets, root)`` so that it can run against a
small tree under ``tmp_path`` as well as against the real repository; each one
returns a list of human-readable problems (empty when all is well) that name the
file or target at fault and say what to add or remove.

Self-contained on purpose: standard library + pytest, no ``tfmeta`` import.
"""
from __future__ import annotations

import ast
import os
import textwrap
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Top-level folders whose .py files must belong to a py_library (or py_binary).
LIBRARY_DIRS = ("tfmeta", "pipelines", "benchmarks")
# Folders (relative to the root) that are never scanned for .py files.
EXCLUDED_DIRS = ("benchmarks/results", "tests/data")
SKIPPED_DIR_NAMES = ("__pycache__",)
TESTS_DIR = "tests"
# Test data: when this folder holds files, every py_test must carry them as data.
TEST_DATA_DIR = "tests/data"
# Scripts that must have a py_binary once they exist: path -> target name.
ENTRY_POINTS = {"tfmeta/cli.py": "tfmeta_cli"}

PY_RULES = ("py_library", "py_binary", "py_test")
# Functions a BUILD file may call whose results we do not model (besides rules).
IGNORED_CALLS = ("load", "package", "licenses", "exports_files")
COMMON_ATTRS = {
    "name", "srcs", "deps", "data", "visibility", "tags", "testonly", "imports",
    "srcs_version", "python_version", "licenses", "compatible_with",
    "restricted_to", "exec_compatible_with", "target_compatible_with",
    "features", "toolchains", "deprecation",
}
RULE_ATTRS = {
    "py_library": COMMON_ATTRS,
    "py_binary": COMMON_ATTRS | {"main", "args", "env", "stamp", "legacy_create_init", "output_licenses"},
    "py_test": COMMON_ATTRS
    | {"main", "args", "env", "stamp", "legacy_create_init", "size", "timeout", "flaky",
       "shard_count", "local", "env_inherit"},
}
TEST_SIZES = ("small", "medium", "large", "enormous")


class BuildFileError(ValueError):
    """BUILD uses syntax this checker (or Starlark) does not accept."""


@dataclass
class Target:
    kind: str
    name: str
    attrs: dict
    lineno: int

    @property
    def label(self) -> str:
        return f"//:{self.name}"

    def files(self, attr: str) -> list[str]:
        value = self.attrs.get(attr, [])
        return [value] if isinstance(value, str) else list(value)

    @property
    def srcs(self) -> list[str]:
        return self.files("srcs")

    @property
    def deps(self) -> list[str]:
        return self.files("deps")

    @property
    def data(self) -> list[str]:
        return self.files("data")

    @property
    def main(self) -> str | None:
        """The main file, with Bazel's default (``<name>.py`` among srcs)."""
        if "main" in self.attrs:
            return self.attrs["main"]
        if self.kind == "py_library":
            return None
        default = [s for s in self.srcs if s.rsplit("/", 1)[-1] == f"{self.name}.py"]
        return default[0] if len(default) == 1 else None

    def __str__(self) -> str:
        return f"{self.kind} {self.label} (BUILD line {self.lineno})"


@dataclass
class BuildFile:
    targets: list[Target]
    # Problems found while evaluating (e.g. a glob() that matches nothing).
    problems: list[str] = field(default_factory=list)

    def by_kind(self, *kinds: str) -> list[Target]:
        return [t for t in self.targets if t.kind in kinds]


# ----------------------------------------------------------------------- glob


def _split(pattern: str) -> list[str]:
    if pattern.startswith("/") or ".." in pattern.split("/") or not pattern:
        raise BuildFileError(f"glob pattern {pattern!r} must be a relative path inside the package")
    return pattern.split("/")


def _match(segments: list[str], parts: list[str]) -> bool:
    if not segments:
        return not parts
    head, rest = segments[0], segments[1:]
    if head == "**":  # zero or more path segments
        return any(_match(rest, parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and _match(rest, parts[1:])


def glob_files(root: Path, include: list[str], exclude: list[str] = ()) -> list[str]:
    """Bazel's glob(): the files (not directories) under ``root`` matching a pattern.

    ``*`` matches within one path segment, ``**`` matches any number of segments
    (including none). Results are root-relative POSIX paths, sorted.
    """
    found: set[str] = set()
    for pattern in include:
        segments = _split(pattern)
        literal = []
        for seg in segments:
            if any(c in seg for c in "*?["):
                break
            literal.append(seg)
        base = root.joinpath(*literal)
        if len(literal) == len(segments):  # no wildcard at all
            if base.is_file():
                found.add(pattern)
            continue
        if not base.is_dir():
            continue
        for dirpath, _dirnames, filenames in os.walk(base):
            rel_dir = Path(dirpath).relative_to(root).as_posix()
            for name in filenames:
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                if _match(segments, rel.split("/")):
                    found.add(rel)
    excluded = [_split(p) for p in exclude]
    return sorted(f for f in found if not any(_match(seg, f.split("/")) for seg in excluded))


# --------------------------------------------------------------- evaluation


class _Evaluator:
    def __init__(self, root: Path):
        self.root = root
        self.env: dict[str, object] = {}
        self.problems: list[str] = []

    def fail(self, node: ast.AST, what: str) -> BuildFileError:
        return BuildFileError(f"BUILD line {getattr(node, 'lineno', '?')}: {what}")

    def eval(self, node: ast.expr):
        if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, bool, type(None))):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.eval(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {self.eval(k): self.eval(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.eval(node.left), self.eval(node.right)
            if type(left) is not type(right) or not isinstance(left, (list, str)):
                raise self.fail(node, "'+' is only supported between two lists or two strings")
            return left + right
        if isinstance(node, ast.Name):
            if node.id not in self.env:
                raise self.fail(node, f"name {node.id!r} is not defined (define it above its first use)")
            return self.env[node.id]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "glob":
            return self.glob(node)
        raise self.fail(node, f"unsupported expression {ast.unparse(node)!r}")

    def glob(self, node: ast.Call) -> list[str]:
        kwargs = self.kwargs(node)
        args = [self.eval(a) for a in node.args]
        if len(args) > 2 or (args and "include" in kwargs):
            raise self.fail(node, "glob() takes include and exclude")
        include = args[0] if args else kwargs.get("include", [])
        exclude = args[1] if len(args) > 1 else kwargs.get("exclude", [])
        for what, value in (("include", include), ("exclude", exclude)):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise self.fail(node, f"glob() {what} must be a list of strings")
        files = glob_files(self.root, include, exclude)
        if not files and not kwargs.get("allow_empty", False):
            self.problems.append(
                f"BUILD line {node.lineno}: glob({include!r}) matches no files; remove it "
                "(newer Bazel rejects empty globs) or add the files it is meant to find"
            )
        return files

    def kwargs(self, node: ast.Call) -> dict:
        out = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise self.fail(node, "**kwargs is not supported")
            out[kw.arg] = self.eval(kw.value)
        return out


def parse_build(text: str, root: Path) -> BuildFile:
    """Evaluate BUILD ``text``; globs are resolved against ``root``."""
    try:
        module = ast.parse(text, filename="BUILD")
    except SyntaxError as exc:
        raise BuildFileError(f"BUILD line {exc.lineno}: syntax error: {exc.msg}") from exc
    ev = _Evaluator(root)
    targets: list[Target] = []
    for stmt in module.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            continue  # a docstring
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            ev.env[stmt.targets[0].id] = ev.eval(stmt.value)
            continue
        if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
                and isinstance(stmt.value.func, ast.Name)):
            raise ev.fail(stmt, "only rule calls and NAME = value assignments are allowed at top level")
        call, func = stmt.value, stmt.value.func.id
        if func in IGNORED_CALLS:
            continue
        if call.args:
            raise ev.fail(call, f"{func}() takes keyword arguments only")
        attrs = ev.kwargs(call)
        name = attrs.get("name")
        if not isinstance(name, str) or not name:
            raise ev.fail(call, f"{func}() needs name = \"...\"")
        for attr in ("srcs", "deps", "data"):
            value = attrs.get(attr, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ev.fail(call, f"{func} {name!r}: {attr} must be a list of non-empty strings")
        if not isinstance(attrs.get("main", ""), str):
            raise ev.fail(call, f"{func} {name!r}: main must be a string")
        if func in RULE_ATTRS:
            unknown = sorted(set(attrs) - RULE_ATTRS[func])
            if unknown:
                raise ev.fail(call, f"{func} {name!r}: unknown attribute(s) {unknown}")
        targets.append(Target(func, name, attrs, call.lineno))
    return BuildFile(targets, ev.problems)


# ----------------------------------------------------------------- the tree


def _py_files(root: Path, top: str) -> list[str]:
    base = root / top
    out = []
    if not base.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(base):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in SKIPPED_DIR_NAMES and f"{rel_dir}/{d}" not in EXCLUDED_DIRS
        )
        out.extend(f"{rel_dir}/{n}" for n in sorted(filenames) if n.endswith(".py"))
    return out


def library_sources(root: Path) -> list[str]:
    return [f for top in LIBRARY_DIRS for f in _py_files(root, top)]


def _is_test_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.startswith("test_") and name.endswith(".py")


def find_test_files(root: Path) -> list[str]:
    return [f for f in _py_files(root, TESTS_DIR) if _is_test_file(f)]


def find_support_files(root: Path) -> list[str]:
    """conftest.py and helper modules: every .py under tests/ that is not test_*.py."""
    return [f for f in _py_files(root, TESTS_DIR) if not _is_test_file(f)]


def py_test_stanza(path: str, data: bool) -> str:
    """The py_test to paste into BUILD for a new test file."""
    stem = path.rsplit("/", 1)[-1][:-3]
    lines = [
        "py_test(",
        f'    name = "{stem}",',
        "    size = \"medium\",",
        f'    srcs = ["{path}"] + TEST_SUPPORT,',
        f'    main = "{path}",',
        '    deps = [":tfmeta", ":pipelines"],',
    ]
    if data:
        lines.append("    data = TEST_DATA,")
    lines.append(")")
    return "\n".join(lines)


# ------------------------------------------------------------------- checks


def check_library_sources(build: BuildFile, root: Path) -> list[str]:
    """Each .py under tfmeta/, pipelines/, benchmarks/ is in exactly one
    py_library's srcs (or, if in none, exactly one py_binary's)."""
    problems = []
    libs = build.by_kind("py_library")
    bins = build.by_kind("py_binary")
    names = {t.name for t in libs}
    for path in library_sources(root):
        in_libs = [t for t in libs if path in t.srcs]
        in_bins = [t for t in bins if path in t.srcs]
        if len(in_libs) > 1:
            problems.append(
                f"{path} is in the srcs of {len(in_libs)} py_library targets "
                f"({', '.join(t.label for t in in_libs)}); keep it in exactly one, remove it from the others"
            )
        elif not in_libs and len(in_bins) > 1:
            problems.append(
                f"{path} is in the srcs of several py_binary targets "
                f"({', '.join(t.label for t in in_bins)}) and no py_library; move it into a py_library"
            )
        elif not in_libs and not in_bins:
            top = path.split("/", 1)[0]
            if top in names:
                fix = f'add "{path}" to the srcs of py_library //:{top} in BUILD'
            else:
                deps = {"pipelines": '[":tfmeta"]', "benchmarks": '[":tfmeta", ":pipelines"]'}.get(top, "[]")
                fix = (f'BUILD has no //:{top}; add py_library(name = "{top}", srcs = ["{path}", ...], '
                       f"deps = {deps}) listing every .py under {top}/")
            problems.append(f"{path} is not in any py_library or py_binary: {fix}")
    return problems


def check_tests(build: BuildFile, root: Path) -> list[str]:
    """Each tests/test_*.py is the main of exactly one py_test whose name is its
    stem; every py_test carries the support files (conftest, helpers) and test data."""
    problems = []
    tests = build.by_kind("py_test")
    support = find_support_files(root)
    data_files = glob_files(root, [f"{TEST_DATA_DIR}/**"])
    for path in find_test_files(root):
        owners = [t for t in tests if t.main == path]
        if not owners:
            problems.append(
                f"{path} has no py_test; add to BUILD:\n"
                + textwrap.indent(py_test_stanza(path, bool(data_files)), "    ")
            )
        elif len(owners) > 1:
            problems.append(
                f"{path} is the main of {len(owners)} py_tests ({', '.join(t.label for t in owners)}); "
                "keep exactly one"
            )
    for t in tests:
        main = t.main
        if main is None:
            problems.append(f'{t}: set main = "tests/test_<...>.py" (the test file it runs)')
            continue
        if not _is_test_file(main) or not main.startswith(f"{TESTS_DIR}/"):
            problems.append(f"{t}: main {main!r} is not a {TESTS_DIR}/test_*.py file")
        stem = main.rsplit("/", 1)[-1][:-3]
        if t.name != stem:
            problems.append(f'{t}: rename it to name = "{stem}" (the stem of its main {main})')
        for s in support:
            if s not in t.srcs:
                problems.append(
                    f'{t}: add "{s}" to its srcs: list it in TEST_SUPPORT at the top of BUILD '
                    "(every py_test carries conftest.py and the test helpers)"
                )
        missing_data = [f for f in data_files if f not in t.data]
        if missing_data:
            problems.append(
                f'{t}: {TEST_DATA_DIR}/ has files it does not carry (e.g. {missing_data[0]}); '
                f'define TEST_DATA = glob(["{TEST_DATA_DIR}/**"]) at the top of BUILD and add data = TEST_DATA '
                "(data = [...] + TEST_DATA where it already has data)"
            )
        if "size" in t.attrs and t.attrs["size"] not in TEST_SIZES:
            problems.append(f"{t}: size {t.attrs['size']!r} is not one of {TEST_SIZES}")
    for t in build.by_kind("py_library", "py_binary"):
        for s in t.srcs:
            if s.startswith(f"{TESTS_DIR}/"):
                problems.append(f"{t}: remove test file {s} from its srcs (tests belong to py_test targets)")
    return problems


def check_files_exist(build: BuildFile, root: Path) -> list[str]:
    """Every file named in srcs / main / data exists; srcs are .py files."""
    problems = list(build.problems)
    for t in build.targets:
        named = [("srcs", f) for f in t.srcs] + [("data", f) for f in t.data]
        if isinstance(t.attrs.get("main"), str):
            named.append(("main", t.attrs["main"]))
        for attr, path in named:
            if path.startswith((":", "//", "@")):
                problems.append(f"{t}: {attr} entry {path!r} is a label; list files by path")
            elif not (root / path).is_file():
                problems.append(f"{t}: {attr} names {path}, which does not exist; remove it or fix the path")
            elif attr == "srcs" and t.kind in PY_RULES and not path.endswith(".py"):
                problems.append(f"{t}: srcs entry {path} is not a .py file; move it to data")
    return problems


def check_labels(build: BuildFile) -> list[str]:
    """Target names are unique and every dep names a target in this BUILD."""
    problems = []
    seen: dict[str, Target] = {}
    for t in build.targets:
        if t.name in seen:
            problems.append(f"{t}: the name {t.name!r} is already used by {seen[t.name]}; rename or remove one")
        else:
            seen[t.name] = t
    for t in build.targets:
        for dep in t.deps:
            if dep.startswith("//:"):
                name = dep[3:]
            elif dep.startswith(":"):
                name = dep[1:]
            else:
                problems.append(
                    f"{t}: dep {dep!r} is not a local ':name' label; third-party packages are pip "
                    "requirements (setup.py / the comment at the top of BUILD), not Bazel deps"
                )
                continue
            if name not in seen:
                problems.append(f"{t}: dep {dep!r} names no target in BUILD; define //:{name} or remove the dep")
            elif name == t.name:
                problems.append(f"{t}: depends on itself; remove {dep!r}")
    return problems


def check_mains(build: BuildFile, root: Path) -> list[str]:
    """A py_test / py_binary's main is in its srcs; entry-point scripts have a py_binary."""
    problems = []
    for t in build.by_kind("py_test", "py_binary"):
        main = t.main
        if main is not None and main not in t.srcs:
            problems.append(f'{t}: its main {main} is not in its srcs; add "{main}" to srcs')
        elif (t.kind == "py_test" and main is not None and (root / main).is_file()
              and "pytest.main(" not in (root / main).read_text()):
            # Bazel runs a py_test's main as a script: without this it passes vacuously.
            problems.append(f'{t}: {main} must end with `if __name__ == "__main__": '
                            'raise SystemExit(pytest.main([__file__]))`')
    for path, name in ENTRY_POINTS.items():
        owners = [t for t in build.by_kind("py_binary") if t.main == path]
        if (root / path).is_file() and not owners:
            problems.append(
                f'{path} exists but has no py_binary; add py_binary(name = "{name}", srcs = ["{path}"], '
                f'main = "{path}", deps = [":{path.split("/", 1)[0]}"])'
            )
    return problems


def check_all(text: str, root: Path) -> list[str]:
    build = parse_build(text, root)
    return (
        check_library_sources(build, root)
        + check_tests(build, root)
        + check_files_exist(build, root)
        + check_labels(build)
        + check_mains(build, root)
    )


# ------------------------------------------------- the repository's BUILD


def _report(problems: list[str]) -> str:
    return "BUILD and the source tree disagree:\n- " + "\n- ".join(problems)


@pytest.fixture(scope="module")
def build() -> BuildFile:
    path = ROOT / "BUILD"
    assert path.is_file(), f"{path} is missing"
    return parse_build(path.read_text(encoding="utf-8"), ROOT)


def test_every_module_is_in_one_library(build):
    problems = check_library_sources(build, ROOT)
    assert not problems, _report(problems)


def test_every_test_file_has_a_py_test(build):
    problems = check_tests(build, ROOT)
    assert not problems, _report(problems)


def test_every_named_file_exists(build):
    problems = check_files_exist(build, ROOT)
    assert not problems, _report(problems)


def test_deps_and_names(build):
    problems = check_labels(build)
    assert not problems, _report(problems)


def test_mains_are_in_srcs(build):
    problems = check_mains(build, ROOT)
    assert not problems, _report(problems)


def test_expected_targets(build):
    kinds = {t.name: t.kind for t in build.targets}
    assert kinds.get("tfmeta") == "py_library", "BUILD must define py_library //:tfmeta"
    assert kinds.get("pipelines") == "py_library", "BUILD must define py_library //:pipelines"
    assert ":tfmeta" in next(t for t in build.targets if t.name == "pipelines").deps, (
        'py_library //:pipelines must have deps = [":tfmeta"]'
    )


def test_workspace_file():
    path = ROOT / "WORKSPACE"
    assert path.is_file(), f"{path} is missing; it should contain workspace(name = \"tfmeta\")"
    calls = [
        node for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "workspace"
    ]
    names = [kw.value.value for c in calls for kw in c.keywords if kw.arg == "name"]
    assert names == ["tfmeta"], f'WORKSPACE must call workspace(name = "tfmeta") once, found {names}'


# ------------------------------------------- the checker catches mistakes


def _tree(root: Path, files: list[str]) -> Path:
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        is_test = Path(f).name.startswith("test_")
        (root / f).write_text("import pytest\npytest.main([__file__])\n" if is_test else "",
                              encoding="utf-8")
    return root


GOOD_BUILD = '''
"""A small but complete BUILD."""
TEST_SUPPORT = ["tests/conftest.py"]

py_library(
    name = "tfmeta",
    srcs = ["tfmeta/__init__.py", "tfmeta/core.py", "tfmeta/cli.py"],
)

py_library(
    name = "pipelines",
    srcs = ["pipelines/__init__.py"],
    deps = [":tfmeta"],
)

py_binary(
    name = "tfmeta_cli",
    srcs = ["tfmeta/cli.py"],
    main = "tfmeta/cli.py",
    deps = ["//:tfmeta"],
)

py_test(
    name = "test_core",
    size = "medium",
    srcs = ["tests/test_core.py"] + TEST_SUPPORT,
    main = "tests/test_core.py",
    deps = [":tfmeta", ":pipelines"],
    data = glob(["tests/data/**"]),
)
'''

GOOD_TREE = [
    "tfmeta/__init__.py", "tfmeta/core.py", "tfmeta/cli.py", "tfmeta/__pycache__/core.cpython-311.pyc",
    "pipelines/__init__.py", "tests/conftest.py", "tests/test_core.py",
    "tests/data/a.csv", "tests/data/nested/deeper/b.json", "benchmarks/results/run.py",
]


def test_checker_accepts_a_consistent_tree(tmp_path):
    _tree(tmp_path, GOOD_TREE)
    assert check_all(GOOD_BUILD, tmp_path) == []


def test_checker_reports_a_missing_file(tmp_path):
    _tree(tmp_path, GOOD_TREE)
    (tmp_path / "tfmeta/core.py").unlink()
    problems = check_all(GOOD_BUILD, tmp_path)
    assert any("tfmeta/core.py" in p and "does not exist" in p for p in problems), problems


def test_checker_reports_a_module_left_out(tmp_path):
    _tree(tmp_path, GOOD_TREE + ["tfmeta/models/__init__.py", "benchmarks/bench_fit.py"])
    problems = check_all(GOOD_BUILD, tmp_path)
    assert any(p.startswith("tfmeta/models/__init__.py") and "//:tfmeta" in p for p in problems), problems
    assert any(p.startswith("benchmarks/bench_fit.py") and 'py_library(name = "benchmarks"' in p
               for p in problems), problems
    assert len(problems) == 2, problems


def test_checker_reports_test_mistakes(tmp_path):
    _tree(tmp_path, GOOD_TREE + ["tests/test_new.py", "tests/helpers.py"])
    problems = check_all(GOOD_BUILD, tmp_path)
    assert any(p.startswith("tests/test_new.py has no py_test") and 'name = "test_new"' in p
               for p in problems), problems
    assert any("//:test_core" in p and '"tests/helpers.py"' in p for p in problems), problems


def test_checker_reports_bad_labels_and_mains(tmp_path):
    _tree(tmp_path, GOOD_TREE)
    broken = (
        GOOD_BUILD.replace('deps = [":tfmeta"],', 'deps = [":tfmeta", ":nope", "@pypi//numpy"],')
        .replace('main = "tfmeta/cli.py"', 'main = "tfmeta/core.py"')
        + 'py_library(name = "pipelines", srcs = [])\n'
    )
    problems = check_all(broken, tmp_path)
    joined = "\n".join(problems)
    assert "':nope' names no target" in joined
    assert "'@pypi//numpy' is not a local" in joined
    assert "already used" in joined
    assert "its main tfmeta/core.py is not in its srcs" in joined
    assert "tfmeta/cli.py exists but has no py_binary" in joined


def test_checker_reports_duplicate_and_empty_glob(tmp_path):
    _tree(tmp_path, [f for f in GOOD_TREE if not f.startswith("tests/data/")])
    broken = GOOD_BUILD.replace('srcs = ["pipelines/__init__.py"]', 'srcs = ["pipelines/__init__.py", "tfmeta/core.py"]')
    problems = check_all(broken, tmp_path)
    assert any(p.startswith("tfmeta/core.py is in the srcs of 2 py_library") for p in problems), problems
    assert any("glob(['tests/data/**']) matches no files" in p for p in problems), problems


def test_glob_supports_double_star(tmp_path):
    _tree(tmp_path, ["d/a.txt", "d/x/b.txt", "d/x/y/c.py", "e.txt"])
    assert glob_files(tmp_path, ["d/**"]) == ["d/a.txt", "d/x/b.txt", "d/x/y/c.py"]
    assert glob_files(tmp_path, ["d/**/*.txt"]) == ["d/a.txt", "d/x/b.txt"]
    assert glob_files(tmp_path, ["**/*.py"]) == ["d/x/y/c.py"]
    assert glob_files(tmp_path, ["*.txt", "d/*"], exclude=["d/a.*"]) == ["e.txt"]
    assert glob_files(tmp_path, ["missing/**"]) == []


def test_unsupported_syntax_is_an_error(tmp_path):
    with pytest.raises(BuildFileError, match="line 1"):
        parse_build('py_library(name = "x", srcs = select({}))', tmp_path)
    with pytest.raises(BuildFileError, match="unknown attribute"):
        parse_build('py_library(name = "x", dep = [])', tmp_path)
    with pytest.raises(BuildFileError, match="srcs must be a list"):
        parse_build('py_library(name = "x", srcs = "x.py")', tmp_path)
    with pytest.raises(BuildFileError, match="not defined"):
        parse_build('py_test(name = "x", srcs = ["a.py"] + SUPPORT)', tmp_path)


if __name__ == "__main__":  # `bazel test` runs the main file as a script
    raise SystemExit(pytest.main([__file__, "-q"]))


def test_checker_reports_a_test_that_bazel_would_run_vacuously(tmp_path):
    _tree(tmp_path, GOOD_TREE)
    (tmp_path / "tests/test_core.py").write_text("def test_x():\n    assert False\n")
    problems = check_all(GOOD_BUILD, tmp_path)
    assert any("pytest.main([__file__])" in p for p in problems), problems
