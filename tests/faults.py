"""Proof of power: deliberate faults in the compiler, each of which the CI profile of the property test must catch.

    python -m tests.faults [--store sqlite|postgresql]... [--only NAME]... [--jobs 2] [--list]

Each fault is a small textual patch (a file of the repository, a snippet that must occur there exactly once,
its replacement) that simulates one plausible bug. For each fault and store, the repository's files as they
are in this working tree (`git ls-files`, uncommitted changes and new files included) are copied to a
temporary directory, the patch is applied there, and tests/test_audiences_reference.py runs on that copy
(its own directory first on sys.path, checked before the run) with HYPOTHESIS_PROFILE=faults: the `ci`
profile's examples exactly (fixed seed), without shrinking. A fault is

- caught: the test failed on one of its own assertions (a Falsifying example, an AssertionError that is
  not the server answering with an error);
- missed: the test passed;
- broken: anything else (the copy does not import, the server answered with an error, nothing ran, a hang).

The same run without any fault must pass first. A table of the results is printed; the exit status is
non-zero if the baseline fails or any fault is missed or broken. Faults that touch only one store's code run
only on that store. Stores: both when SEGMENTQL_TEST_POSTGRES_URL is set, else SQLite, unless --store says.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/test_audiences_reference.py"
STORES = ("sqlite", "postgresql")
SQLITE, POSTGRESQL = ("sqlite",), ("postgresql",)
TIMEOUT = 900  # seconds for one run of the test: a run that takes longer is a hang
COMPILER, PROPERTIES = "resolvers/compiler.py", "resolvers/property_sql.py"
SQLITE_SQL, POSTGRESQL_SQL = "store/dialects/sqlite.py", "store/dialects/postgresql.py"
DIALECT_BASE = "store/dialects/base.py"
# The test runs under way (each in a process group of its own), ended if this script is stopped.
RUNNING: set[subprocess.Popen[str]] = set()
STOPPING = threading.Event()


@dataclass(frozen=True)
class Edit:
    path: str  # relative to the repository
    old: str  # must occur exactly once in the file
    new: str


@dataclass(frozen=True)
class Fault:
    name: str
    simulates: str
    edits: tuple[Edit, ...]
    stores: tuple[str, ...] = STORES  # the stores whose code the patch changes


def fault(name: str, simulates: str, path: str, old: str, new: str, *more: Edit,
          stores: tuple[str, ...] = STORES) -> Fault:
    return Fault(name, simulates, (Edit(path, old, new), *more), stores)


FAULTS: tuple[Fault, ...] = (
    # ---------------------------------------------------------------- time windows
    fault("last-hours-start-exclusive", "lastHours leaves out an event exactly N hours before asOf",
          COMPILER, "return as_of - n * MICROS_PER_HOUR, as_of", "return as_of - n * MICROS_PER_HOUR + 1, as_of"),
    fault("last-days-start-exclusive", "lastDays leaves out an event exactly N days before asOf",
          COMPILER, "return as_of - n * MICROS_PER_DAY, as_of", "return as_of - n * MICROS_PER_DAY + 1, as_of"),
    fault("since-exclusive", "since D leaves out an event at D",
          COMPILER, "return to_micros(at), as_of", "return to_micros(at) + 1, as_of"),
    fault("before-inclusive", "before D counts an event at D",
          COMPILER, "return None, min(to_micros(at) - 1, as_of)", "return None, min(to_micros(at), as_of)"),
    fault("between-start-exclusive", "between A and B leaves out an event at A",
          COMPILER, "return to_micros(start), min(to_micros(end) - 1, as_of)",
          "return to_micros(start) + 1, min(to_micros(end) - 1, as_of)"),
    fault("between-end-inclusive", "between A and B counts an event at B",
          COMPILER, "return to_micros(start), min(to_micros(end) - 1, as_of)",
          "return to_micros(start), min(to_micros(end), as_of)"),
    fault("window-end-exclusive", "a window's last instant (asOf itself, or just before D) is left out",
          COMPILER, "upper = ts <= sa.literal(high, sa.BigInteger)", "upper = ts < sa.literal(high, sa.BigInteger)"),
    # ---------------------------------------------------------------- asOf
    fault("as-of-unbounded-without-window", "a condition without a window counts events after asOf",
          COMPILER, "*bounds_conditions(event.c.ts, window_start, window_end),",
          "*(bounds_conditions(event.c.ts, window_start, window_end) if condition.within else []),"),
    fault("first-times-ignore-as-of", "the first-time shortcut (did X, ever) counts a first time after asOf",
          COMPILER, "return [firsts.c.metric_id == _metric_id(condition.metric), firsts.c.first_ts <= high]",
          "return [firsts.c.metric_id == _metric_id(condition.metric)]"),
    fault("follow-up-after-as-of", "a follow-up after asOf counts",
          COMPILER, "*self.follow_up_conditions(event, follow_up, self.as_of),",
          "*self.follow_up_conditions(event, follow_up),"),
    fault("in-segment-now", "inSegment evaluates the saved segment now, not at the query's asOf",
          COMPILER, "            found = self._set(self.segments[segment_id])",
          "            found = FilterCompiler(self.dialect, to_micros(now_utc()), self.segments)._set("
          "self.segments[segment_id])",
          Edit(COMPILER, "from vocabulary.timestamps import MICROS_PER_DAY,",
               "from vocabulary.timestamps import now_utc\nfrom vocabulary.timestamps import MICROS_PER_DAY,")),
    # ---------------------------------------------------------------- follow-ups
    fault("follow-up-end-exclusive", "a follow-up exactly withinHours after X does not count",
          COMPILER, "later.c.ts <= event.c.ts + hours,", "later.c.ts < event.c.ts + hours,"),
    fault("follow-up-same-instant", "an event at the same instant as X (X itself too) counts as its follow-up",
          COMPILER, "later.c.ts > event.c.ts,", "later.c.ts >= event.c.ts,"),
    fault("follow-up-any-profile", "another profile's event counts as a follow-up",
          COMPILER, "            later.c.profile_id == event.c.profile_id,\n", ""),
    fault("follow-up-where-ignored", "a follow-up's where conditions are not applied",
          COMPILER, "            *(self._event_predicate(later, where) for where in follow_up.where),\n", ""),
    fault("follow-up-after-window-start-day", "a follow-up within a day after X's window starts does not count",
          COMPILER, "[FOLLOW_UPS.c.ts > sa.literal(window_start, sa.BigInteger)]",
          "[FOLLOW_UPS.c.ts > sa.literal(window_start + MICROS_PER_DAY, sa.BigInteger)]"),
    fault("not-followed-wait-ignored", "notFollowedBy counts X whose wait has not passed by asOf",
          COMPILER, "conditions.append(event.c.ts + hours <= self.as_of)", "pass"),
    fault("not-followed-wait-exclusive", "notFollowedBy leaves out X whose wait ends exactly at asOf",
          COMPILER, "conditions.append(event.c.ts + hours <= self.as_of)", "conditions.append(event.c.ts + hours < self.as_of)"),
    fault("same-properties-missing-key", "sameProperties does not require a key that X lacks",
          COMPILER, "*(self.sql.same_value(later.c.properties, event.c.properties, key)",
          "*(sa.or_(sa.not_(self.sql.exists(event.c.properties, key)),"
          " self.sql.same_value(later.c.properties, event.c.properties, key))"),
    fault("same-properties-null-equal", "sameProperties takes a JSON null on both events as equal",
          POSTGRESQL_SQL, "return sa.and_(self._type(doc, key) != \"null\", self._get(doc, key) == self._get(other, key))",
          "return self._get(doc, key) == self._get(other, key)", stores=POSTGRESQL),
    # ---------------------------------------------------------------- counts
    fault("exactly-zero-grouped", "exactly 0 counted by GROUP BY: profiles without events are never members",
          COMPILER, "case ast.Exactly(0):\n"
          "                return Audience(self._profiles_with_count(condition, \">=\", 1), negated=True)",
          "case ast.Exactly(0):\n                return Audience(self._profiles_with_count(condition, \"=\", 0))"),
    fault("at-most-without-zero", "atMost n by GROUP BY … HAVING count <= n: profiles with no event left out",
          COMPILER, "return Audience(self._profiles_with_count(condition, \">=\", n + 1), negated=True)",
          "return Audience(self._profiles_with_count(condition, \"<=\", n))",
          Edit(COMPILER, "having = sa.func.count() >= n if compare == \">=\" else sa.func.count() == n",
               "having = {\">=\": sa.func.count() >= n, \"<=\": sa.func.count() <= n}.get(compare, sa.func.count() == n)")),
    fault("walk-at-most-without-zero", "the walk shape's atMost n leaves out profiles with no event",
          COMPILER, "case ast.AtMost(n):\n                return found <= n",
          "case ast.AtMost(n):\n                return sa.and_(found >= 1, found <= n)"),
    fault("exactly-as-at-least", "exactly n counted as at least n",
          COMPILER, "having = sa.func.count() >= n if compare == \">=\" else sa.func.count() == n",
          "having = sa.func.count() >= n"),
    # ---------------------------------------------------------------- property conditions
    fault("neq-missing-property", "NEQ is false on a missing or null property",
          PROPERTIES, "    return sa.not_(sa.func.coalesce(inner, sa.false(), type_=sa.Boolean))",
          "    if condition.op is PropertyOp.NEQ:\n"
          "        return sa.and_(dialect.exists(doc, condition.property), sa.not_(inner))\n"
          "    return sa.not_(sa.func.coalesce(inner, sa.false(), type_=sa.Boolean))"),
    fault("neq-unset-field", "NEQ/NOT_IN on an unset built-in field (firstName) is NULL, so false",
          COMPILER, "        return sa.not_(sa.func.coalesce(inner, sa.false()))", "        return sa.not_(inner)"),
    fault("in-first-item-only", "IN compares with the first item of its list only",
          PROPERTIES, "return dialect.equals_any(doc, key, list(value)) if value else sa.false()",
          "return dialect.equals_any(doc, key, list(value)[:1]) if value else sa.false()"),
    fault("starts-with-zero-based", "STARTS_WITH on a property takes substr from 0 (one character short)",
          PROPERTIES, "sa.func.substr(text, 1, len(value))", "sa.func.substr(text, 0, len(value))"),
    fault("starts-with-field-zero-based", "STARTS_WITH on a built-in field takes substr from 0",
          COMPILER, "sa.func.substr(column, 1, len(operand))", "sa.func.substr(column, 0, len(operand))"),
    fault("exists-null-sqlite", "EXISTS holds on a JSON null",
          SQLITE_SQL, "return sa.and_(kind.is_not(None), kind != \"null\")\n\n    @staticmethod",
          "return kind.is_not(None)\n\n    @staticmethod", stores=SQLITE),
    fault("exists-null-postgresql", "EXISTS holds on a JSON null",
          POSTGRESQL_SQL, "return sa.and_(kind.is_not(None), kind != \"null\")\n\n    def equals_any",
          "return kind.is_not(None)\n\n    def equals_any", stores=POSTGRESQL),
    fault("contains-list-substring-sqlite", "CONTAINS \"a\" holds on a list whose JSON text holds a (e.g. [\"ab\"])",
          SQLITE_SQL, "in_text = sa.and_(self._type(doc, key) == \"text\", sa.func.instr(self._value(doc, key), value) > 0)",
          "in_text = sa.func.instr(self._value(doc, key), value) > 0", stores=SQLITE),
    fault("contains-list-substring-postgresql", "CONTAINS \"a\" holds on a list whose JSON text holds a (e.g. [\"ab\"])",
          POSTGRESQL_SQL, "in_text = sa.func.strpos(self.text_value(doc, key), sa.literal(value, sa.String)) > 0",
          "in_text = sa.func.strpos(self._get(doc, key).astext, sa.literal(value, sa.String)) > 0", stores=POSTGRESQL),
    fault("contains-string-as-equality", "CONTAINS on a string value holds only when equal, not for a substring",
          SQLITE_SQL, "either = sa.or_(sa.exists().select_from(items).where(equal_item), in_text).self_group()",
          "either = sa.exists().select_from(items).where(equal_item)", stores=SQLITE),
    fault("contains-string-ignored", "CONTAINS on a string value never holds (lists only)",
          POSTGRESQL_SQL, "return sa.or_(in_list, in_text).self_group()", "return in_list", stores=POSTGRESQL),
    fault("one-is-not-one-point-zero-sqlite", "1 does not equal 1.0 (numbers compared with their JSON type)",
          SQLITE_SQL, "options.append(sa.and_(kind.in_([\"integer\", \"real\"]), value.in_(numbers)))",
          "options.append(sa.and_(kind == (\"real\" if isinstance(numbers[0], float) else \"integer\"), value.in_(numbers)))",
          stores=SQLITE),
    fault("one-is-not-one-point-zero-postgresql", "1 does not equal 1.0 (values compared as JSON text)",
          POSTGRESQL_SQL,
          "return sa.and_(self._get(doc, key).is_not(None), self._jsonb(values).op(\"@>\", is_comparison=True)(found))",
          "return sa.and_(self._get(doc, key).is_not(None),"
          " sa.cast(self._get(doc, key), sa.Text).in_([orjson.dumps(v).decode() for v in values]))",
          stores=POSTGRESQL),
    fault("booleans-are-numbers", "= true also matches 1 and 1.0 (a bool is an int in Python)",
          DIALECT_BASE, "isinstance(v, int | float) and not isinstance(v, bool)]", "isinstance(v, int | float)]",
          stores=SQLITE),
    fault("ordering-ignores-types", "GT/LT on a property compares a number with a string (SQLite: numbers < text)",
          SQLITE_SQL, "return sa.case((self._type(doc, key).in_([\"integer\", \"real\"]), self._value(doc, key)))",
          "return self._value(doc, key)", stores=SQLITE),
    fault("gt-inclusive", "GT on a property holds on an equal value",
          PROPERTIES, "PropertyOp.GT: \"__gt__\"", "PropertyOp.GT: \"__ge__\""),
    fault("lt-inclusive-fields", "LT on a built-in field or createdAt holds on an equal value",
          COMPILER, "ast.PropertyOp.LT: ordered < operand", "ast.PropertyOp.LT: ordered <= operand"),
    fault("created-at-seconds", "createdAt compared with the value truncated to whole seconds",
          COMPILER, "values = [to_micros(parse_datetime(v)) for v in values]",
          "values = [int(parse_datetime(v).timestamp()) * 1_000_000 for v in values]"),
    # ---------------------------------------------------------------- metrics
    fault("metric-by-display-name", "a filter matches the metric's first-seen spelling, not its key",
          COMPILER, "where(metrics.c.name_key == metric_key(name))", "where(metrics.c.name == name)"),
    fault("metric-enum-spelling-unknown", "STARTED_CONVERSATION (an agent metric's enum spelling) is another metric",
          "vocabulary/agent_metrics.py", "for spelling in (metric.name, metric.enum_name, *metric.aliases)",
          "for spelling in (metric.name, *metric.aliases)"),
    # ---------------------------------------------------------------- shapes: set, walk, pages, first times
    fault("or-of-complements", "an or of two complements excludes the union of what they exclude",
          COMPILER, "ids = _intersect(excluded)\n    return Audience(sa.except_(operand(ids), operand(_union(included)))",
          "ids = _union(excluded)\n    return Audience(sa.except_(operand(ids), operand(_union(included)))"),
    fault("walk-drops-and-item", "the walk along a driving did X drops the and's item after it",
          COMPILER, "others = items[:index] + items[index + 1:]", "others = items[:index] + items[index + 2:]"),
    fault("walk-profile-null", "the walk shape lets a NULL profile test through (not of NULL is NULL)",
          COMPILER, "case ast.ProfileMatch(condition):\n"
          "                return sa.func.coalesce(self._profile_predicate(condition), sa.false())",
          "case ast.ProfileMatch(condition):\n                return self._profile_predicate(condition)"),
    fault("first-times-for-windows-with-start", "the first-time shortcut answers a window with a start (lastDays)",
          COMPILER, "return _metric_and_window_only(condition) and window_bounds(condition.within, self.as_of_micros)[0] is None",
          "return _metric_and_window_only(condition)"),
    fault("first-time-is-last", "profile_metrics keeps a profile's last time of a metric, not its first",
          "store/profile_metric_summaries.py", "sa.func.min(rows.c.ts)", "sa.func.max(rows.c.ts)"),
    fault("first-time-moves-later", "a later write moves a profile's first time of a metric later",
          "store/profile_metric_summaries.py", "where=insert.excluded.first_ts < profile_metrics.c.first_ts",
          "where=insert.excluded.first_ts > profile_metrics.c.first_ts"),
    fault("cursor-inclusive", "a page after a cursor repeats the cursor's member",
          COMPILER, "query = query.where(profiles.c.id > after_id)", "query = query.where(profiles.c.id >= after_id)"),
    # ---------------------------------------------------------------- the text form
    fault("text-drops-microseconds", "the text form prints a window's datetimes without fractions of a second",
          "resolvers/language/text.py", "return parse_datetime(at).replace(tzinfo=None).isoformat() + \"Z\"",
          "return parse_datetime(at).replace(tzinfo=None, microsecond=0).isoformat() + \"Z\""),
)


# ---------------------------------------------------------------- checking and applying patches


def check_faults(root: Path, faults: Sequence[Fault]) -> None:
    """Every snippet occurs exactly once in its file and changes it; names are unique. Fails loudly otherwise."""
    problems = []
    names = [f.name for f in faults]
    problems += [f"fault name {name!r} is used twice" for name in sorted({n for n in names if names.count(n) > 1})]
    for each in faults:
        for edit in each.edits:
            path = root / edit.path
            if not path.is_file():
                problems.append(f"{each.name}: {edit.path} does not exist")
                continue
            found = path.read_text(encoding="utf-8").count(edit.old)
            if found != 1:
                problems.append(f"{each.name}: the snippet occurs {found} times in {edit.path}, not once: {edit.old!r}")
            if edit.old == edit.new:
                problems.append(f"{each.name}: the replacement in {edit.path} changes nothing")
        if not set(each.stores) <= set(STORES):
            problems.append(f"{each.name}: unknown stores {each.stores}")
    if problems:
        sys.exit("tests/faults.py: the fault list does not fit the code (update it):\n  " + "\n  ".join(problems))


def apply(copy: Path, edits: Sequence[Edit]) -> None:
    for edit in edits:
        path = copy / edit.path
        text = path.read_text(encoding="utf-8")
        if text.count(edit.old) != 1:
            raise RuntimeError(f"the snippet does not occur exactly once in {edit.path}: {edit.old!r}")
        path.write_text(text.replace(edit.old, edit.new, 1), encoding="utf-8")


def working_tree_files(root: Path) -> list[str]:
    """The files of the working tree: tracked (as they are now, changes included) and new, not ignored."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=root, capture_output=True, check=True).stdout.decode()
    return sorted({name for name in listed.split("\0") if name and (root / name).is_file()})


def copy_tree(root: Path, files: Sequence[str], target: Path) -> None:
    for name in files:
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, destination)


# ---------------------------------------------------------------- running the test on a copy


@dataclass
class Run:
    fault: Fault | None  # None: the baseline
    store: str
    result: str = ""  # caught | missed | broken | passed | failed (the last two for the baseline)
    seconds: float = 0.0
    detail: str = ""  # the first assertion line, or why it is broken
    log: Path | None = None

    @property
    def label(self) -> str:
        return self.fault.name if self.fault else "(no fault)"


def module_of(path: str) -> str | None:
    return path[:-3].replace("/", ".") if path.endswith(".py") else None


def child_environment(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTHONPATH", "HYPOTHESIS_PROFILE")}
    # CI would fail a run that tested no PostgreSQL case (tests/conftest.py); -k selects one store here.
    env.update(PYTHONPATH=str(copy), HYPOTHESIS_PROFILE="faults", PYTHONDONTWRITEBYTECODE="1")
    return env


def imports_from_copy(copy: Path, env: dict[str, str], modules: Sequence[str]) -> str | None:
    """None when every module imports from the copy; else what went wrong."""
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    print(importlib.import_module(name).__file__)"
    done = subprocess.run([sys.executable, "-c", script, *modules], cwd=copy, env=env, capture_output=True, text=True,
                          timeout=300)
    if done.returncode != 0:
        return f"the patched copy does not import: {last_line(done.stderr)}"
    for name, file in zip(modules, done.stdout.split(), strict=True):
        if not Path(file).resolve().is_relative_to(copy.resolve()):
            return f"{name} imports from {file}, not from the copy"
    return None


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def judge(code: int, output: str, baseline: bool) -> tuple[str, str]:
    """(result, detail) of one pytest run's exit code and output."""
    passed = re.search(r"(?m)^1 passed\b", output) is not None
    failed = re.search(r"(?m)^(FAILED .*|1 failed\b.*)$", output) is not None
    errors = [line.strip() for line in output.splitlines() if line.startswith("E ")]
    first_error = errors[0][1:].strip() if errors else last_line(output)
    if baseline:
        return ("passed", "") if code == 0 and passed else ("failed", first_error)
    if code == 0:
        return ("missed", "") if passed else ("broken", f"nothing ran: {last_line(output)}")
    if code != 1 or not failed:
        return "broken", f"pytest exit {code}: {last_line(output)}"
    if 'assert "errors" not in body' in output:
        return "broken", f"the server answered with an error: {first_error[:200]}"
    if "Falsifying example" in output or "AssertionError" in output:
        return "caught", first_error[:200]
    return "broken", f"failed without an assertion: {first_error[:200]}"


def run_one(run: Run, snapshot: Path, files: Sequence[str], logs: Path, keep: bool) -> Run:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f"segmentql-fault-{run.label.strip('()').replace(' ', '-')}-{run.store}-"))
    copy = work / "repo"
    try:
        copy_tree(snapshot, files, copy)
        edits = run.fault.edits if run.fault else ()
        apply(copy, edits)
        env = child_environment(copy)
        modules = ["tests.test_audiences_reference", *(m for m in map(module_of, (e.path for e in edits)) if m)]
        wrong = imports_from_copy(copy, env, list(dict.fromkeys(modules)))
        if wrong:
            run.result, run.detail = ("failed" if run.fault is None else "broken"), wrong
            return run
        command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", f"--basetemp={work / 'tmp'}",
                   TEST, "-k", run.store]
        if STOPPING.is_set():
            raise KeyboardInterrupt
        process = subprocess.Popen(command, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, start_new_session=True)
        RUNNING.add(process)
        try:
            output, _ = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the run's own process group
            output, _ = process.communicate()
            run.result, run.detail = ("failed" if run.fault is None else "broken"), f"hung: no result after {TIMEOUT} s"
        else:
            run.result, run.detail = judge(process.returncode, output, baseline=run.fault is None)
        finally:
            RUNNING.discard(process)
        run.log = logs / f"{run.label.strip('()').replace(' ', '-')}.{run.store}.log"
        run.log.write_text(output, encoding="utf-8")
        return run
    finally:
        run.seconds = time.monotonic() - started
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------- the table


def table(runs: Sequence[Run], skipped: Sequence[tuple[Fault, str]]) -> str:
    rows = [("fault", "simulates", "store", "result", "seconds")]
    rows += [(r.label, r.fault.simulates if r.fault else "the code as it is: the test must pass", r.store, r.result,
              f"{r.seconds:.0f}") for r in runs]
    rows += [(f.name, f.simulates, why, "not run", "") for f, why in skipped]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", action="append", choices=STORES,
                        help="a store to run on (repeatable; default: both when SEGMENTQL_TEST_POSTGRES_URL is set, else sqlite)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this fault (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument("--list", action="store_true", help="check and list the faults, run nothing")
    parser.add_argument("--keep", action="store_true", help="keep the patched copies")
    args = parser.parse_args(argv)

    chosen = list(FAULTS)
    if args.only:
        unknown = sorted(set(args.only) - {f.name for f in FAULTS})
        if unknown:
            parser.error(f"no fault named {', '.join(unknown)}; --list lists them")
        chosen = [f for f in FAULTS if f.name in args.only]
    if args.list:
        check_faults(ROOT, FAULTS)
        for each in chosen:
            only = "" if each.stores == STORES else f" [{', '.join(each.stores)} only]"
            print(f"{each.name:<38} {each.simulates}{only}")
        return 0
    stores: list[str] = list(dict.fromkeys(
        args.store or (STORES if os.environ.get("SEGMENTQL_TEST_POSTGRES_URL") else ["sqlite"])))
    if "postgresql" in stores and not os.environ.get("SEGMENTQL_TEST_POSTGRES_URL"):
        parser.error("--store postgresql needs SEGMENTQL_TEST_POSTGRES_URL")

    runs = [Run(None, store) for store in stores]
    runs += [Run(each, store) for each in chosen for store in stores if store in each.stores]
    skipped = [(each, f"{'/'.join(each.stores)} only") for each in chosen if not set(each.stores) & set(stores)]
    if args.only and not any(run.fault for run in runs):
        parser.error("none of the chosen faults applies to the chosen stores")
    # The working tree as it is now, copied once: edits made while the runs go on do not mix into them.
    files = working_tree_files(ROOT)
    snapshot = Path(tempfile.mkdtemp(prefix="segmentql-faults-snapshot-"))
    copy_tree(ROOT, files, snapshot)
    check_faults(snapshot, FAULTS)
    logs = Path(tempfile.mkdtemp(prefix="segmentql-faults-logs-"))
    print(f"{len(runs) - len(stores)} fault runs and {len(stores)} baseline runs on {', '.join(stores)},"
          f" {args.jobs} at a time; logs in {logs}", file=sys.stderr, flush=True)
    done = 0
    lock = threading.Lock()

    def execute(run: Run) -> Run:
        nonlocal done
        finished = run_one(run, snapshot, files, logs, args.keep)
        with lock:
            done += 1
            detail = f": {finished.detail}" if finished.detail else ""
            print(f"[{done}/{len(runs)}] {finished.label} on {finished.store}: {finished.result}"
                  f" ({finished.seconds:.0f} s){detail}", file=sys.stderr, flush=True)
        return finished

    signal.signal(signal.SIGTERM, interrupt)  # a stopped script ends its runs too (each in its own session)
    pool = ThreadPoolExecutor(max_workers=max(1, args.jobs))
    try:
        finished = list(pool.map(execute, runs))
    except BaseException:  # interrupted: end the runs under way, start no other
        STOPPING.set()
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list(RUNNING):
            os.killpg(process.pid, signal.SIGKILL)
        raise
    finally:
        shutil.rmtree(snapshot, ignore_errors=True)
    pool.shutdown()
    print(table(finished, skipped))
    baseline_failed = [r for r in finished if r.fault is None and r.result != "passed"]
    not_caught = [r for r in finished if r.fault is not None and r.result != "caught"]
    caught = sum(1 for r in finished if r.result == "caught")
    print(f"\n{caught} of {len(finished) - len(stores)} fault runs caught; baseline "
          f"{'FAILED' if baseline_failed else 'passed'} on {', '.join(stores)}")
    for run in baseline_failed:
        print(f"baseline on {run.store} failed: {run.detail} (log: {run.log})")
    for run in not_caught:
        print(f"{run.label} on {run.store}: {run.result}{f' ({run.detail})' if run.detail else ''}")
    return 1 if baseline_failed or not_caught else 0


if __name__ == "__main__":
    sys.exit(main())
