"""The verdict of ``python -m django_suite`` (database-free): outcomes against the
expected-failures file, the file's format errors, and the recording of outcomes."""

from __future__ import annotations

import io
import re
import sys
import tarfile
import unittest
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from django_suite import cli, source  # noqa: E402
from django_suite import expected as expected_file  # noqa: E402
from django_suite.cli import EXIT_USAGE, main  # noqa: E402
from django_suite.compare import NOT_RUN, compare  # noqa: E402
from django_suite.engines import SUITE_ENGINES  # noqa: E402
from django_suite.recorder import FAILED, PASSED, SKIPPED, XFAILED, RecordingResult  # noqa: E402

ENGINES = frozenset(SUITE_ENGINES)
BROKEN = "transactions.tests.AtomicErrorsTests.test_broken"
FINE = "basic.tests.ModelTest.test_fine"


def load_text(tmp_path: Path, text: str) -> expected_file.ExpectedFailures:
    path = tmp_path / "expected.toml"
    path.write_text(text)
    return expected_file.load(path, engines=ENGINES)


def test_a_listed_failure_matches() -> None:
    verdict = compare({BROKEN: FAILED, FINE: PASSED}, {BROKEN: "defect: a reason"})
    assert verdict.ok
    assert (verdict.tests, verdict.passed, verdict.failed, verdict.expected) == (2, 1, 1, 1)


def test_an_unlisted_failure_is_a_mismatch_with_its_exception() -> None:
    details = {BROKEN: "Traceback (most recent call last):\n  ...\nAssertionError: boom\n"}
    verdict = compare({BROKEN: FAILED, FINE: PASSED}, {}, details=details)
    assert not verdict.ok
    assert [(m.test_id, m.why) for m in verdict.unexpected_failures] == [
        (BROKEN, "AssertionError: boom")
    ]
    assert verdict.unexpected == 1


@pytest.mark.parametrize("outcome", [PASSED, SKIPPED])
def test_a_listed_test_that_does_not_fail_is_a_mismatch(outcome: str) -> None:
    verdict = compare({BROKEN: outcome}, {BROKEN: "defect: a reason"})
    assert not verdict.ok
    (mismatch,) = verdict.unexpected_passes
    assert mismatch.outcome == outcome
    assert "defect: a reason" in mismatch.why
    assert "remove its entry" in mismatch.why


def test_a_listed_test_that_did_not_run_counts_only_in_a_complete_run() -> None:
    listed = {BROKEN: "defect: a reason"}
    (mismatch,) = compare({FINE: PASSED}, listed).unexpected_passes
    assert mismatch.outcome == NOT_RUN
    assert "renamed or removed" in mismatch.why
    assert compare({FINE: PASSED}, listed, complete=False).ok


def test_django_own_expected_failures_are_not_failures() -> None:
    assert compare({BROKEN: XFAILED}, {}).ok


def test_the_shipped_file_loads_and_has_a_reason_for_each_entry() -> None:
    listed = expected_file.load(expected_file.DEFAULT_PATH, engines=ENGINES)
    for (engine, version), tests in listed.entries.items():
        assert engine in ENGINES
        assert version.count(".") == 1
        assert all(reason.strip() for reason in tests.values())


def test_entries_are_found_by_django_series(tmp_path: Path) -> None:
    listed = load_text(tmp_path, f'[real_pool."4.2"]\n"{BROKEN}" = "defect: x"\n')
    assert listed.for_run("real_pool", "4.2.30") == {BROKEN: "defect: x"}
    assert listed.for_run("real_pool", "5.2.1") == {}
    assert listed.for_run("real_pool_dj", "4.2.30") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[real_pol."4.2"]\n', "unknown engine [real_pol]"),
        ("real_pool = 3\n", 'must hold tables such as [real_pool."6.1"]'),
        ('[real_pool."4.2.30"]\n', "use the series, such as"),
        ('[real_pool]\n"4.2" = "x"\n', "must be a table of test id = reason"),
        ('[real_pool."4.2"]\n"not a test" = "x"\n', "which is not a test id"),
        (f'[real_pool."4.2"]\n"{BROKEN}" = ""\n', "needs its reason as a non-empty string"),
        (f'[real_pool."4.2"]\n"{BROKEN}" = 1\n', "needs its reason as a non-empty string"),
        ('[real_pool."4.2"\n', "is not valid TOML"),
    ],
)
def test_format_errors_name_the_entry_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(expected_file.ExpectedFailuresError, match=re.escape(message)) as caught:
        load_text(tmp_path, text)
    assert str(tmp_path / "expected.toml") in str(caught.value)


def test_a_class_fixture_error_is_a_valid_test_id(tmp_path: Path) -> None:
    text = '[real_pool_dj."6.1"]\n"setUpClass (basic.tests.ModelTest)" = "defect: x"\n'
    assert load_text(tmp_path, text).for_run("real_pool_dj", "6.1.3")


def test_a_bad_file_is_a_usage_error_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "expected.toml"
    path.write_text('[nope."6.1"]\n')
    assert main(["--engine", "real_pool", "--expected", str(path)]) == EXIT_USAGE
    assert "unknown engine [nope]" in capsys.readouterr().err


class _Cases(unittest.TestCase):
    __test__ = False  # run by the test below, not by pytest

    def test_passes(self) -> None:
        pass

    def test_fails(self) -> None:
        self.fail("boom")

    def test_errors(self) -> None:
        raise RuntimeError("bang")

    def test_subtest_fails(self) -> None:
        for number in range(2):
            with self.subTest(number=number):
                self.assertEqual(number, 0)  # noqa: PT009 - a unittest failure is the point

    @unittest.skip("not here")
    def test_skipped(self) -> None:
        pass

    @unittest.expectedFailure
    def test_known_broken(self) -> None:
        self.fail("known")

    @unittest.expectedFailure
    def test_known_broken_but_passes(self) -> None:
        pass


def test_the_recording_result_keeps_each_outcome_and_the_failure_text() -> None:
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(_Cases)
    runner = unittest.TextTestRunner(stream=io.StringIO(), resultclass=RecordingResult)
    result = runner.run(suite)
    assert isinstance(result, RecordingResult)
    outcomes = {test_id.rsplit(".", 1)[1]: value for test_id, value in result.outcomes.items()}
    assert outcomes == {
        "test_passes": PASSED,
        "test_fails": FAILED,
        "test_errors": FAILED,
        "test_subtest_fails": FAILED,
        "test_skipped": SKIPPED,
        "test_known_broken": XFAILED,
        "test_known_broken_but_passes": FAILED,
    }
    details = {test_id.rsplit(".", 1)[1]: text for test_id, text in result.details.items()}
    assert "AssertionError: boom" in details["test_fails"]
    assert "RuntimeError: bang" in details["test_errors"]
    assert "(number=1)" in details["test_subtest_fails"]
    assert details["test_skipped"] == "not here"


def _sdist(path: Path, members: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_only_the_tests_directory_of_the_sdist_is_unpacked(tmp_path: Path) -> None:
    archive = _sdist(
        tmp_path / "django-9.9.9.tar.gz",
        {
            "django-9.9.9/tests/runtests.py": "print('run')",
            "django-9.9.9/tests/basic/tests.py": "",
            "django-9.9.9/django/__init__.py": "",
            "django-9.9.9/tests/../../escape.py": "",
        },
    )
    tests = source._unpack_tests(archive, tmp_path / "out")
    found = sorted(str(p.relative_to(tests)) for p in tests.rglob("*") if p.is_file())
    assert found == ["basic/tests.py", "runtests.py"]
    assert not (tmp_path / "escape.py").exists()


def test_an_sdist_without_runtests_is_refused(tmp_path: Path) -> None:
    archive = _sdist(tmp_path / "django-9.9.9.tar.gz", {"django-9.9.9/tests/basic/x.py": ""})
    with pytest.raises(source.SuiteSourceError, match=r"has no tests/runtests\.py"):
        source._unpack_tests(archive, tmp_path / "out")


def test_a_complete_cached_suite_is_used_without_downloading(tmp_path: Path) -> None:
    tests = tmp_path / "Django-9.9.9" / "tests"
    tests.mkdir(parents=True)
    (tests / "runtests.py").write_text("")
    # Django 9.9.9 does not exist: a download attempt would raise SuiteSourceError.
    assert source.suite_tests_dir("9.9.9", cache_dir=tmp_path) == tests


def test_an_engine_the_django_version_lacks_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"needs Django >= 5\.1; Django 5\.0\.14 is installed"):
        cli._check_engine(SUITE_ENGINES["django_native"], "5.0.14")
    cli._check_engine(SUITE_ENGINES["django_native"], "5.1.0")
    cli._check_engine(SUITE_ENGINES["real_pool"], "4.2.30")


def test_a_bad_pg_version_variable_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PYTEST_PG_VERSION", "fifteen")
    assert main(["--engine", "real_pool"]) == EXIT_USAGE
    assert (
        "PYTEST_PG_VERSION='fifteen' is not a PostgreSQL major version" in capsys.readouterr().err
    )


def test_an_unusable_cache_directory_says_how_to_choose_another(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(source.SuiteSourceError, match="Choose a writable directory"):
        source.suite_tests_dir("9.9.9", cache_dir=blocker / "cache")
