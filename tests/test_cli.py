"""The command line: exit codes, errors to stderr without tracebacks, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iopscreen import __version__
from iopscreen.answers_file import WRAPPER_KEYS
from iopscreen.cli import run

DATA = Path(__file__).parent / "data"
MINIMAL = str(DATA / "minimal.yaml")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.strip() == f"iopscreen {__version__}"


def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "rules", "validate", MINIMAL)
    assert code == 0
    assert "ok (minimal-test 0.1.0" in out
    assert err == ""


def test_validate_reports_all_problems_with_locations(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    text = Path(MINIMAL).read_text()
    text = text.replace('when: "mood_band == \'high\'"', 'when: "mood_bnd == \'high\'"')
    text = text.replace("    min_level: mid\n    flags: [review]", "    min_level: middle\n"
                        "    flags: [review]")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    code, out, err = cli(capsys, "rules", "validate", str(bad))
    assert code == 3
    lines = [line for line in err.splitlines() if " error " in line]
    assert len(lines) == 2
    assert "E201 unknown-name: 'mood_bnd' is not defined" in err
    assert "hint: did you mean 'mood_band'?" in err
    assert "E211 unknown-level" in err
    assert all(line.startswith(f"{bad}:") for line in lines)
    assert "Traceback" not in err


def test_missing_ruleset_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "rules", "validate", "/nonexistent/rules.yaml")
    assert code == 3
    assert err.startswith("error: rule set '/nonexistent/rules.yaml' not found")
    assert "hint:" in err


def test_show_lists_every_part(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "rules", "show", MINIMAL)
    assert code == 0
    for heading in ("LEVELS", "QUESTIONS", "INSTRUMENTS", "DERIVED VALUES", "RULES",
                    "MISCONCEPTIONS", "DISCLAIMER"):
        assert heading in out
    assert "crisis_plan: Danger with a plan -> min high, flag crisis" in out


def test_show_lists_choice_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "rules", "show")
    assert code == 0
    assert "male=Male (also M, man); female=Female (also F, woman)" in " ".join(out.split())


def write(tmp_path: Path, name: str, data: dict) -> str:  # type: ignore[type-arg]
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


def test_evaluate_text_and_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    answers = write(tmp_path, "a.json", {"danger": "yes", "danger_plan": "yes", "mood_1": 1,
                                         "mood_2": 0, "mood_3": 2, "trauma": "no", "drinks": 0})
    code, out, _ = cli(capsys, "evaluate", "-r", MINIMAL, "--answers", answers)
    assert code == 0
    assert "CRISIS - ACT NOW" in out
    assert "Do not leave the person alone." in out
    assert "RECOMMENDED LEVEL OF CARE" in out and "HIGH" in out
    assert "from: danger = yes, danger_plan = yes" in out
    assert "screening aid, not a diagnosis" in out
    code, out, _ = cli(capsys, "evaluate", "-r", MINIMAL, "--answers", answers, "-f", "json")
    data = json.loads(out)
    assert data["level"] == "high" and data["flags"][0]["id"] == "crisis"


def test_evaluate_yaml_answers_with_wrapper(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("answers:\n  danger: no\n  mood_1: most days\n  mood_2: 2\n  mood_3: 0\n")
    code, out, _ = cli(capsys, "evaluate", "-r", MINIMAL, "-a", str(path), "-f", "json")
    assert code == 0
    assert json.loads(out)["level"] == "mid"


def test_evaluate_invalid_answers_exit_1_without_values(capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    answers = write(tmp_path, "a.json", {"mood_1": "very-private-words", "dangr": "yes"})
    code, out, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", answers)
    assert code == 1
    assert "very-private-words" not in err + out
    assert "E405 not-a-choice: answer to 'mood_1' is not one of its choices" in err
    assert "did you mean 'danger'?" in err


def test_evaluate_broken_json_points_at_the_place(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('{"danger": "yes",\n "mood_1": }')
    code, _, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", str(path))
    assert code == 1
    assert f"{path}:2:" in err and "not valid JSON" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "evaluate", "--bogus")
    assert code == 2
    assert "No such option" in err
    code, _, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", "/nope.json")
    assert code == 2 and "not found" in err


def test_internal_errors_hide_locals_and_exit_70(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    import iopscreen.cli as cli_module

    def boom(*_: object, **__: object) -> None:
        secret = "patient-secret"  # noqa: F841 - must not leak through a traceback
        raise RuntimeError("patient-secret")

    monkeypatch.setattr(cli_module, "screen", boom)
    answers = write(tmp_path, "a.json", {"danger": "no"})
    code, out, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", answers)
    assert code == 70
    assert "patient-secret" not in out + err
    assert "internal error: RuntimeError" in err


def test_rules_test_passes_and_reports_failures(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    code, out, _ = cli(capsys, "rules", "test", MINIMAL)
    assert code == 0
    assert out.strip().endswith("3 passed, 0 failed")
    rules = tmp_path / "r.yaml"
    rules.write_text(Path(MINIMAL).read_text())
    cases = (DATA / "minimal.tests.yaml").read_text().replace("level: high\n      flags: [crisis]",
                                                              "level: mid\n      flags: [review]")
    (tmp_path / "r.tests.yaml").write_text(cases)
    code, out, _ = cli(capsys, "rules", "test", str(rules))
    assert code == 1
    assert "FAIL crisis plan (line 10)" in out
    assert "level: expected mid, got high" in out
    assert "flags: missing review; unexpected crisis" in out
    assert "2 passed, 1 failed" in out


def test_rules_test_rejects_unknown_ids_in_expectations(capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(Path(MINIMAL).read_text())
    (tmp_path / "r.tests.yaml").write_text(
        "cases:\n  - name: a\n    answers: {danger: no}\n    expect:\n      rules: [crisis_pln]\n")
    code, _, err = cli(capsys, "rules", "test", str(rules))
    assert code == 3
    assert "r.tests.yaml:5:15: error E201 unknown-name" in err
    assert "did you mean 'crisis_plan'?" in err


def test_evaluate_save_keeps_a_record(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    answers = write(tmp_path, "a.json", {"danger": "no", "mood_1": 2, "mood_2": 2, "mood_3": 0})
    db = str(tmp_path / "r.db")
    code, out, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", answers, "-f", "json",
                         "--save", "--client", "C-9", "--db", db)
    assert code == 0
    assert json.loads(out)["level"] == "mid"  # stdout stays pure JSON
    assert "Saved as record 1" in err
    code, out, _ = cli(capsys, "records", "show", "1", "--db", db, "--format", "json")
    assert code == 0
    record = json.loads(out)
    assert record["client"] == "C-9" and record["source"] == "evaluate"
    assert record["result"]["level"] == "mid"


def test_ctrl_c_while_the_command_line_loads_ends_quietly(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from iopscreen import entry

    def interrupted(name: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(entry, "import_module", interrupted)
    with pytest.raises(SystemExit) as stop:
        entry.main()
    assert stop.value.code == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_evaluate_screens_around_invalid_answers_and_shows_the_crisis(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    answers = write(tmp_path, "a.json", {"danger": "yes", "danger_plan": "yes",
                                         "mood_1": "private-words-1", "drinks": -3,
                                         "dangr_typo": "private-words-2"})
    code, out, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", answers)
    assert code == 1
    assert "CRISIS - ACT NOW" in out and "Danger with a plan" in out
    # (the file's path is left out: pytest's folders are numbered, e.g. pytest-34)
    assert "private-words" not in out + err and "-3" not in err.replace(answers, "")
    assert [line.split(": ", 1)[1] for line in err.splitlines() if " error " in line] == [
        "error E405 not-a-choice: answer to 'mood_1' is not one of its choices",
        "error E404 out-of-range: answer to 'drinks' is outside 0-100",
        "error E406 unknown-question: 'dangr_typo' is not a question of this rule set"]
    assert err.splitlines()[-1] == (f"3 invalid answer(s) in {answers}: the result above counts "
                                    "them as unanswered; a crisis was flagged: act on it now")


def test_evaluate_json_and_output_file_carry_the_result_and_the_errors(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    answers = write(tmp_path, "a.json", {"danger": "yes", "danger_plan": "yes", "mood_1": 7})
    target = tmp_path / "made" / "result.json"
    code, out, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", answers, "-f", "json",
                         "-o", str(target))
    assert code == 1
    data = json.loads(out)
    assert json.loads(target.read_text()) == data
    assert (target.stat().st_mode & 0o777, target.parent.stat().st_mode & 0o777) == (0o600, 0o700)
    assert data["level"] == "high" and data["flags"][0]["id"] == "crisis"
    assert "mood_1" not in data["answers"]  # screened as unanswered
    assert data["errors"] == [{"code": "E405", "name": "not-a-choice", "question": "mood_1",
                               "message": "answer to 'mood_1' is not one of its choices",
                               "hint": "use a code or label: 0=Not at all, 1=Some days, "
                                       "2=Most days"}]
    assert "E405" in err
    code, _, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", answers, "-o", str(target))
    assert code == 2 and "already exists" in err and "--force" in err
    ok = write(tmp_path, "ok.json", {"danger": "no"})
    code, out, _ = cli(capsys, "evaluate", "-r", MINIMAL, "-a", ok, "-f", "json",
                       "-o", str(target), "--force")
    assert code == 0 and json.loads(out)["errors"] == [] == json.loads(target.read_text())["errors"]
    code, _, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", ok, "-o", ok, "--force")
    assert code == 2 and "is the input" in err


def test_evaluate_save_with_invalid_answers_saves_nothing(capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    answers = write(tmp_path, "a.json", {"danger": "maybe"})
    db = tmp_path / "r.db"
    code, _, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", answers, "--save", "--db",
                       str(db))
    assert code == 1
    assert "not saved: fix them and rerun with --save" in err
    assert not db.exists()


def test_evaluate_show_values_bounds_what_it_prints(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    answers = write(tmp_path, "a.json", {"mood_1": "x" * 5000, "concerns": [[[["deep"]]]]})
    code, _, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", answers, "--show-values")
    assert code == 1
    assert "(got 'xxxx" in err and "x" * 200 not in err
    assert "answer to 'concerns' has a value that is not one of its choices" in err


def test_evaluate_unknown_keys_are_printed_escaped_and_bounded(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    answers = write(tmp_path, "a.json", {"bad\x1b[31mkey\x07": "yes", "k" * 500: "no"})
    code, _, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", answers)
    assert code == 1
    assert "\x1b" not in err and "\x07" not in err
    assert "'bad\\x1b[31mkey\\x07' is not a question" in err
    assert "k" * 61 not in err and "'" + "k" * 60 + "...' is not a question" in err


@pytest.mark.parametrize("name, content, message", [
    ("big.json", b'{"drinks": ' + b"9" * 5000 + b"}", "not valid JSON (a number too long"),
    ("deep.json", b"[" * 100000 + b"]" * 100000, "not valid JSON (a number too long or lists"),
    ("deep.yaml", b"danger: " + b"[" * 5000 + b"]" * 5000, "not valid YAML"),
    ("bytes.yaml", b"danger: \xff\xfeyes\n", "not UTF-8 text (byte 9)"),
    ("bell.yaml", b"danger: yes\x07\n", "not valid YAML"),
    ("huge.yaml", b"comment: " + b"a" * (1 << 20) + b"\n", "the answers file is over 1 MB"),
    ("list.yaml", b"- danger\n- yes\n", "answers must be a mapping"),
])
def test_evaluate_bad_answers_files_are_one_located_error(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, content: bytes,
        message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    code, out, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", str(path))
    assert code == 1, err
    assert out == ""
    assert err.startswith(f"error: {path}") and message in err.splitlines()[0]
    assert "Traceback" not in err and "internal error" not in err


@pytest.mark.parametrize("name, text, where", [
    ("a.yaml", "danger: yes\ndanger_plan: yes\nmood_1: 2\ndanger_plan: no\n", " (lines 2, 4)"),
    ("a.json", '{"answers": {"danger": "yes", "danger_plan": "yes", "danger_plan": "no"}}', ""),
])
def test_an_answer_given_twice_is_an_error_and_counts_as_unanswered(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, text: str,
        where: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    code, out, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", str(path), "-f", "json")
    assert code == 1
    assert (f"{path}: error E407 repeated-answer: 'danger_plan' is answered more than "
            f"once{where}") in err
    data = json.loads(out)
    # Neither the "yes" nor the later "no" is taken: the plan stays open, never read as "no".
    assert "danger_plan" not in data["answers"] and data["provisional"]
    assert "danger_plan" in data["deciding_questions"]
    assert [e["code"] for e in data["errors"]] == ["E407"]


def test_answers_beside_the_wrapper_still_count(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    # Found by the fuzz suite: {"answers": {...}} made every other top-level key vanish, a
    # crisis answer with it. Other keys (a result JSON's "level", "flags", ...) are ignored.
    answers = write(tmp_path, "a.json", {"answers": {"mood_1": 2}, "danger": "yes",
                                         "danger_plan": "yes", "level": "low"})
    code, out, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", answers, "-f", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["flags"][0]["id"] == "crisis" and data["answers"]["mood_1"] == 2
    both = write(tmp_path, "b.json", {"answers": {"danger": "no"}, "danger": "yes"})
    code, out, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", both, "-f", "json")
    assert code == 1
    assert "E407 repeated-answer: 'danger' is answered more than once" in err
    assert "danger" not in json.loads(out)["answers"]


def test_a_key_beside_the_wrapper_that_is_no_question_is_reported(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A misspelt question id beside the wrapper is reported as it is inside (E406, exit 1,
    the rest screened), not silently dropped; a result's own keys ("level") are not."""
    answers = write(tmp_path, "a.json", {"answers": {"danger": "yes", "danger_plan": "yes"},
                                         "drinkss": 2, "level": "low"})
    code, out, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a", answers)
    assert code == 1 and "CRISIS - ACT NOW" in out
    assert "error E406 unknown-question: 'drinkss' is not a question of this rule set" in err
    assert "did you mean 'drinks'?" in err and "'level'" not in err


def test_a_result_or_a_record_is_read_back_as_answers_without_problems(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Every key of `evaluate --format json` and `records show --format json` is one a wrapped
    answers file may have (WRAPPER_KEYS), so both read back as answers, with the same result."""
    first = write(tmp_path, "a.json", {"danger": "no", "mood_1": 2, "mood_2": 2, "mood_3": 0,
                                       "drinks": 200})  # an error, so "errors" is a key too
    db = str(tmp_path / "r.db")
    code, out, _ = cli(capsys, "evaluate", "-r", MINIMAL, "-a", first, "-f", "json")
    result = json.loads(out)
    cli(capsys, "evaluate", "-r", MINIMAL, "-a", write(tmp_path, "b.json", {
        k: v for k, v in result["answers"].items()}), "--save", "--db", db, "--client", "C")
    code, out, _ = cli(capsys, "records", "show", "1", "--db", db, "--format", "json")
    record = json.loads(out)
    assert result["errors"] and set(result) | set(record) <= WRAPPER_KEYS
    for name, data in (("result.json", result), ("record.json", record)):
        code, out, err = cli(capsys, "evaluate", "-r", MINIMAL, "-a",
                             write(tmp_path, name, data), "-f", "json")
        assert code == 0 and err == "", name
        assert json.loads(out)["level"] == result["level"] == "mid"


def test_evaluate_flags_a_safety_answer_that_skip_logic_dropped(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Intent answered 'yes' after active thoughts 'no': skip logic drops the intent answer, so
    the result cannot show the crisis it may hold; evaluate says so and exits 1, as batch does."""
    answers = write(tmp_path, "a.json", {"si_wish_dead": "yes", "si_active_thoughts": "no",
                                         "si_intent": "yes"})
    code, out, err = cli(capsys, "evaluate", "-a", answers, "--format", "json")
    data = json.loads(out)
    assert code == 1 and data["safety_review"] is True and data["ignored_answers"] == ["si_intent"]
    assert "SAFETY REVIEW" in err and "si_intent" in err and "--allow-dropped-safety" in err
    code, out, err = cli(capsys, "evaluate", "-a", answers, "--allow-dropped-safety")
    assert code == 0 and "SAFETY REVIEW" in err
    # with nothing dropped there is nothing to review
    answers = write(tmp_path, "b.json", {"si_wish_dead": "no", "si_active_thoughts": "no"})
    code, out, err = cli(capsys, "evaluate", "-a", answers, "--format", "json")
    assert code == 0 and json.loads(out)["safety_review"] is False and "SAFETY REVIEW" not in err
