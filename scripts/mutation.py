"""Mutation testing, module by module: `make mutation` (not part of `make test` or CI).

Each module is mutated by mutmut with only the tests relevant to it (MODULE_TESTS below).
A full run of the 28 modules took 54 minutes on a quiet 2-core machine: 10 for the pure core
(6,000 mutants), 44 for the adapters (3,100 mutants, each running real tests on Azurite).
`--changed` reruns only the modules whose source or tests changed since their row.
The score per module goes to .mutation.json (merged with the previous record, so running one
module updates only its row), a table is printed, and then the survivors tests/MUTANTS.md
does not name yet (each must be killed by a test or argued there; a test checks it).
Usage: python scripts/mutation.py [--max-children N] [--changed] [module-name ...]
Survivors of the last module run: `.venv/bin/mutmut results`, `.venv/bin/mutmut show NAME`,
and their diffs in mutants-survivors/<module>.diff.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from azurite_pool import POOL_ENV, write_pool_entry  # noqa: E402 - after the path set-up

from shared.local.azurite import Azurite  # noqa: E402

RECORD = ROOT / ".mutation.json"
SETUP_CFG = ROOT / "setup.cfg"
MUTANTS = ROOT / "mutants"

_GOLDEN_SCAN = "tests/test_mutants_analysis.py"  # first: it kills most mutants fastest
_GOLDEN_ALERTS = "tests/test_mutants_alerts.py"
_ALERTS_STORE = "tests/test_mutants_alerts_store.py"  # the alert-side adapters' kill tests
_PKCS = "tests/test_mutants_pkcs.py"  # every odd PKCS#7/PKCS#12 shape and what the user sees
_MESSAGE_TESTS = [
    "tests/test_mutants_message.py",
    "tests/test_mutants_tenant_blocks.py",
    _GOLDEN_ALERTS,
    "tests/test_message.py",
]
_LISTING_TESTS = [
    "tests/test_mutants_listings.py",
    "tests/test_mutants_listing_json.py",
    "tests/test_mutants_listing_bodies.py",
    "tests/test_listings_sniff.py",
    "tests/test_listings_bodies.py",
    "tests/test_listings_authority.py",
    "tests/test_listings_sphere.py",
    "tests/test_registrations_listings.py",
]

# Adapter tests run against Azurite; the few that take several seconds each (hundreds of
# blobs, a restarted Azurite, a CLI subprocess) are left out of the mutant runs: they would
# multiply the run time and what they check is also checked by the fast ones beside them.
_STORE_KILLS = "tests/test_mutants_storage.py"  # small deliveries: kill most mutants fastest
_PIPELINE = [
    _STORE_KILLS,
    "tests/test_pipeline.py",
    "tests/test_private_keys.py",
    "--deselect=tests/test_pipeline.py::test_five_hundred_blobs_each_recorded_once",
    "--deselect=tests/test_pipeline.py::test_cli_upload_process_report_round_trip",
    "--deselect=tests/test_pipeline.py::test_azurite_stopped_mid_run_then_restarted",
    "--deselect=tests/test_private_keys.py::test_cli_upload_refuses_key_material_before_sending",
    "tests/test_table_limits.py",  # the ETag races of a certificate's sources
    "--deselect=tests/test_table_limits.py::test_upload_of_600_certificates_is_fully_recorded_and_superseded",
    "--deselect=tests/test_table_limits.py::test_one_certificate_under_300_long_names_lists_every_source",
]
_REGISTRATIONS = [
    "tests/test_registrations.py",
    "tests/test_registrations_listings.py",
    "-k",
    "not eight_at_once",
]
_ALERT_RUNS = [
    "tests/test_alerts_runner.py",
    "--deselect=tests/test_alerts_runner.py::"
    "test_items_cut_by_the_teams_size_limit_go_in_the_next_run",
]
_SLOW_REPORT = [
    "--deselect=tests/test_fleet_report.py::test_report_html_over_a_thousand_tenants_from_the_tables"
]
# The channels (issue 24): each against its own loopback peer (aiosmtpd, an HTTP(S)
# receiver, the trickling relays of the misbehaving-peer tests).
_PEERS = "tests/test_misbehaving_peers.py::"
_SMTP_PEERS = [
    f"{_PEERS}test_smtp_silence_after_the_final_dot_is_unknown_and_repeated_once_marked",
    f"{_PEERS}test_a_stuck_relay_and_a_hanging_webhook_do_not_hold_the_outbox",
    f"{_PEERS}test_a_trickled_tls_handshake_ends_at_the_deadline",
]
_TEAMS_PEERS = [
    f"{_PEERS}test_teams_without_an_answer_is_unknown_then_retried_once_as_a_possible_repeat",
    f"{_PEERS}test_teams_5xx_twice_posts_at_most_twice_and_tells_the_operators",
    f"{_PEERS}test_teams_429_with_retry_after_waits_in_the_run_when_it_fits",
    f"{_PEERS}test_teams_429_with_a_long_retry_after_fails_and_waits_that_long",
    f"{_PEERS}test_teams_reads_a_few_kb_of_a_1_gib_body",
    f"{_PEERS}test_each_send_gets_no_more_than_what_is_left_of_the_pass_budget",
    f"{_PEERS}test_a_trickled_tls_handshake_ends_at_the_deadline",
]
_CHANNEL_KILLS = "tests/test_mutants_channels.py"  # what the behaviour tests leave alive
_CHANNEL_UNITS = [
    "tests/test_channel_outbox.py",
    "tests/test_channel_smtp.py",
    "tests/test_channel_teams.py",
    "tests/test_channel_acs.py",
]
# The CLI commands: only tests that call `ca-watch` in the test's own process. mutmut
# learns which tests reach a function from that process alone, so a test that runs
# `python -m shared.local.cli` in a subprocess kills no mutant (its mutants show as
# "no tests"); those stay out of the selections.
_CLI = "tests/test_cli_commands.py::"
_CLI_KILLS = "tests/test_mutants_cli.py"  # each command's --help, and what else is unpinned
_ALERTS_CLI = [
    _CLI_KILLS,
    f"{_CLI}test_alerts_plan_exits_1_with_items_due_and_shows_column_headers",
    f"{_CLI}test_alerts_plan_exits_0_with_nothing_due",
    f"{_CLI}test_report_exits_1_while_an_affected_tenant_ca_is_open_and_0_once_acknowledged",
    "tests/test_alerts_runner.py::test_ack_stops_alerts_and_unknown_reference_is_a_usage_error",
    "tests/test_alerts_runner.py::test_alerts_plan_claims_nothing_and_run_uses_the_timer_function",
    "tests/test_alerts_runner.py::test_alerts_run_exits_1_when_a_send_fails",
]
_REPORT_CLI = [
    _CLI_KILLS,
    f"{_CLI}test_process_exits_1_when_an_upload_is_unreadable_or_rejected",
    f"{_CLI}test_report_exits_1_while_an_affected_tenant_ca_is_open_and_0_once_acknowledged",
    f"{_CLI}test_report_names_certificates_by_sha1_everywhere",
    "tests/test_fleet_report.py::test_report_html_over_hostile_uploads",
    "tests/test_fleet_report.py::test_report_html_with_no_tenants_and_only_unreadable_uploads",
    "tests/test_fleet_report.py::test_report_html_refuses_a_path_it_cannot_write",
]
_PULL_CLI = [
    _CLI_KILLS,
    "tests/test_registration_pull.py::test_cli_pull_prints_json_and_exits_1_when_a_target_is_unreadable",
    "tests/test_registration_pull.py::test_cli_pull_without_now_records_the_utc_moment",
    "tests/test_registration_pull.py::test_cli_usage_errors_are_one_line_and_exit_2",
    "tests/test_setup_noise.py::test_registrations_pull_without_a_credential_in_process_too",
]

_ALL_CLEAR = "tests/test_all_clear.py"
# The all-clear's end-to-end tests after a module's own fast kill tests, without the one that
# takes 20 s (listing order: the registrations' matter, not these modules').
_INVENTORY = "tests/test_mutants_inventory.py"  # the inventory's storage (issue 21)
_ALL_CLEAR_FAST = [
    _ALL_CLEAR,
    "--deselect=tests/test_all_clear.py::test_an_older_listing_arriving_later_is_a_stale_listing",
]
_KEY_FORMS = "tests/test_keys_forms.py::"
_REQUESTS = "tests/test_requests_per_blob.py::"

# module -> the tests that exercise it (what mutmut runs against each of its mutants). Kept
# narrow on purpose: a survivor runs every selected test that reaches it, so the run time
# grows with this list. A test file added for a module belongs here, or it is not counted.
MODULE_TESTS: dict[str, list[str]] = {
    "shared/analysis/classify.py": [
        _GOLDEN_SCAN,
        "tests/test_classification_edges.py",
        "tests/test_analyzer.py",
    ],
    "shared/analysis/facts.py": [
        _GOLDEN_SCAN,
        "tests/test_classification_edges.py",
        "tests/test_analyzer.py",
    ],
    "shared/analysis/der.py": [
        _GOLDEN_SCAN,
        "tests/test_mutants_der.py",
        "tests/test_der.py",
        "tests/test_reader.py",
    ],
    "shared/analysis/pem.py": [
        _GOLDEN_SCAN,
        "tests/test_mutants_pem.py",
        "tests/test_der.py",
        "tests/test_reader.py",
    ],
    "shared/analysis/reader.py": [
        _GOLDEN_SCAN,
        "tests/test_mutants_reader.py",
        "tests/test_der.py",
        "tests/test_reader.py",
    ],
    "shared/analysis/scan.py": [
        _GOLDEN_SCAN,
        "tests/test_mutants_scan.py",
        "tests/test_listings_sniff.py",  # a listing after a PEM block (issue 21)
        "tests/test_analyzer.py",
        "tests/test_wrappers.py",
    ],
    "shared/analysis/chain.py": [
        _GOLDEN_SCAN,
        "tests/test_mutants_chain.py",
        "tests/test_analyzer.py",
        "tests/test_wrappers.py",
    ],
    "shared/alerts/rules.py": [
        _GOLDEN_ALERTS,
        "tests/test_mutants_rules.py",
        "tests/test_rules.py",
    ],
    "shared/alerts/rules_toml.py": [
        _GOLDEN_ALERTS,
        "tests/test_mutants_rules.py",
        "tests/test_rules.py",
    ],
    "shared/alerts/planner.py": [
        _GOLDEN_ALERTS,
        "tests/test_mutants_planner.py",
        "tests/test_planner.py",
    ],
    # message.py renders what tenant_blocks.py builds, teams_card.py and text_safety.py
    # carry: one selection kills the mutants of all four (they were one module).
    "shared/alerts/message.py": _MESSAGE_TESTS,
    "shared/alerts/tenant_blocks.py": _MESSAGE_TESTS,
    "shared/alerts/teams_card.py": _MESSAGE_TESTS,
    "shared/alerts/text_safety.py": _MESSAGE_TESTS,
    "shared/analysis/pkcs7.py": [_PKCS, _GOLDEN_SCAN, "tests/test_wrappers.py"],
    # Not test_work_bounds.py (hypothesis, slow): test_mutants_pkcs*.py pin the same bounds.
    "shared/analysis/pkcs12.py": [_PKCS, "tests/test_wrappers.py"],
    "shared/analysis/pkcs12_crypto.py": [
        "tests/test_mutants_pkcs12_crypto.py",
        _PKCS,
        "tests/test_wrappers.py",
    ],
    # listings.py was one module with listing_json.py and listing_bodies.py: their tests
    # kill each other's mutants, so the three share one selection (all pure, ~3 s).
    "shared/analysis/listings.py": _LISTING_TESTS,
    "shared/analysis/listing_json.py": _LISTING_TESTS,
    "shared/analysis/listing_bodies.py": _LISTING_TESTS,
    "shared/alerts/registration.py": [
        "tests/test_mutants_registration.py",
        "tests/test_registrations_message.py",
        "tests/test_registrations_listings.py",
        "tests/test_states_vocabulary.py",
        "tests/test_enrollment_resolution.py",
    ],
    "shared/alerts/states.py": ["tests/test_states_vocabulary.py"],
    "shared/alerts/notice_message.py": ["tests/test_notice_message.py"],
    "shared/analysis/renewal_auth.py": ["tests/test_renewal_auth.py"],
    # Issue 22's group parser, shared by the live readers and uploads.
    "shared/analysis/enrollment_listings.py": [
        "tests/test_mutants_enrollment_listings.py",
        "tests/test_readers_enrollment_parsing.py",
        "tests/test_listings_groups.py",
    ],
    # Issue 23's key check, pure (test_keys_forms.py checks the same forms end to end on
    # Azurite, 25 s a run: left out).
    "shared/analysis/keys.py": ["tests/test_mutants_keys.py", "tests/test_keys_check.py"],
    # Issue 21 end to end on Azurite: the acts that silence, and what announces them.
    "shared/storage/notices.py": ["tests/test_mutants_notices.py", *_ALL_CLEAR_FAST],
    "shared/storage/issuers.py": ["tests/test_mutants_issuers.py", *_ALL_CLEAR_FAST],
    "shared/app/announce.py": ["tests/test_mutants_announce.py", *_ALL_CLEAR_FAST],
    "shared/local/silence_cmd.py": [_CLI_KILLS, _ALL_CLEAR],
    # Its checklist (issue 24) is rendered by the alert message: the message's tests too.
    "shared/alerts/registration_text.py": [
        "tests/test_mutants_checklist.py",
        "tests/test_mutants_registration.py",
        "tests/test_registrations_message.py",
        *_MESSAGE_TESTS,
    ],
    # The kill tests cover what test_pipeline.py does, in fewer, smaller deliveries.
    "shared/app/pipeline.py": [
        "tests/test_mutants_pipeline.py",
        _STORE_KILLS,
        "tests/test_private_keys.py",
        "--deselect=tests/test_private_keys.py::test_cli_upload_refuses_key_material_before_sending",
        # earlier versions no row records, through the versioning proxy (Azurite has none)
        f"{_KEY_FORMS}test_a_key_replaced_before_the_function_ran_is_found_in_its_version",
        f"{_KEY_FORMS}test_a_password_pfx_replaced_before_the_function_ran_is_found_in_its_version",
        f"{_KEY_FORMS}test_a_certificate_version_never_processed_is_kept",
        f"{_KEY_FORMS}test_a_key_under_a_name_refused_unread_is_still_checked_and_deleted",
        f"{_KEY_FORMS}test_the_sweep_goes_past_a_recorded_version_and_says_what_it_deleted",
        f"{_KEY_FORMS}test_versions_deleted_by_someone_else_meanwhile_do_not_stop_the_sweep",
        f"{_KEY_FORMS}test_a_version_is_read_whole_up_to_the_limit_and_only_its_start_past_it",
        # requests counted by a proxy: prefix listings, no retry of a refused one, one read
        # of the name's upload rows
        f"{_REQUESTS}test_an_ordinary_certificate_costs_six_requests_and_a_duplicate_three",
        f"{_REQUESTS}test_each_versions_listing_is_of_the_blob_s_own_name",
        f"{_REQUESTS}test_a_versions_listing_the_service_refuses_is_logged_once_and_not_retried",
        f"{_ALL_CLEAR}::test_an_upload_naming_a_live_target_changes_nothing",
        f"{_ALL_CLEAR}::test_a_revoked_renewal_in_a_sphere_ca_list_never_counts",
    ],
    # What issue 21 added to them (ignored listings, retired uploads, a tenant CA's body and
    # issuer, issuers, notices): its fast kill tests, then the all-clear's own.
    "shared/storage/uploads.py": [_INVENTORY, *_PIPELINE, *_ALL_CLEAR_FAST],
    "shared/storage/certificates.py": [_INVENTORY, *_PIPELINE, *_ALL_CLEAR_FAST],
    # Narrowed (issue 21): with the whole pipeline and registrations suites a survivor ran
    # for minutes; the tenant kill tests, the small deliveries and the all-clear's tests
    # drive every line of the module.
    "shared/storage/tenants.py": [
        "tests/test_mutants_tenants.py",
        "tests/test_mutants_tenant_rows.py",
        _INVENTORY,
        _STORE_KILLS,
        *_ALL_CLEAR_FAST,
        # an acknowledgement until a date keeps the CA's index row at its end
        "tests/test_mutants_store.py::"
        "test_a_tenant_ack_covers_the_cas_on_record_until_its_date_and_its_withdrawal_reopens",
    ],
    # The store's wiring and its silencing acts: the kill tests reach every line of it; the
    # pipeline's behaviour tests reach only its construction (left to the modules they test).
    "shared/storage/store.py": [
        "tests/test_mutants_store.py",
        _STORE_KILLS,
        "tests/test_store_pool.py",
        # the one test that builds a store on rules of its own
        "tests/test_mutants_tenants.py::test_the_stores_own_rules_choose_the_replacement",
    ],
    "shared/storage/registrations.py": [
        "tests/test_mutants_registrations_store.py",
        _ALERTS_STORE,
        *_REGISTRATIONS,
        # 72 blobs on 8 workers (10 s); the race it checks is pinned by the ETag tests above
        "--deselect=tests/test_registrations.py::"
        "test_listings_processed_beside_certificates_leave_nothing_open",
    ],
    "shared/storage/alert_index.py": [
        "tests/test_mutants_alert_index.py",
        _ALERTS_STORE,
        *_ALERT_RUNS,
        # only the registration tests that move index rows (closing, reopening, rechecks)
        "tests/test_registrations.py::test_send_time_recheck_closes_a_stale_index_row",
        "tests/test_registrations.py::test_renewal_stays_open_until_verified_in_every_target",
        "tests/test_registrations.py::test_snapshot_replacement_forgets_a_removed_certificate",
        "tests/test_registrations.py::test_recheck_reads_only_due_tenants",
        # an acknowledgement until a date: the CA is next looked at when it ends
        "tests/test_mutants_store.py::"
        "test_a_tenant_ack_covers_the_cas_on_record_until_its_date_and_its_withdrawal_reopens",
    ],
    # a write refused for another reason than a race (a fake table client: writes fail)
    "shared/storage/gate.py": ["tests/test_mutants_gate.py", _ALERTS_STORE, *_ALERT_RUNS],
    "shared/storage/acks.py": [_ALERTS_STORE, *_ALERT_RUNS],
    "shared/storage/ledger.py": [_ALERTS_STORE, *_ALERT_RUNS, "tests/test_planner.py"],
    "shared/storage/report.py": [
        "tests/test_mutants_report.py",
        _ALERTS_STORE,
        *_ALERT_RUNS,
        "tests/test_fleet_report.py",
        *_SLOW_REPORT,
    ],
    "shared/channels/__init__.py": [_CHANNEL_KILLS, *_CHANNEL_UNITS],
    "shared/channels/base.py": [_CHANNEL_KILLS, *_CHANNEL_UNITS],
    "shared/channels/deadline.py": [
        _CHANNEL_KILLS,
        "tests/test_channel_deadline.py",
        "tests/test_smtp_time_budget.py",
        *_SMTP_PEERS,
    ],
    "shared/channels/outbox.py": [_CHANNEL_KILLS, "tests/test_channel_outbox.py"],
    "shared/channels/smtp.py": [
        "tests/test_mutants_smtp.py",  # a scripted relay: each failure's words, fast
        "tests/test_channel_smtp.py",
        "tests/test_smtp_time_budget.py",
        *_SMTP_PEERS,
    ],
    "shared/channels/teams.py": [
        "tests/test_mutants_teams.py",  # a scripted webhook: each outcome's words, fast
        "tests/test_channel_teams.py",
        *_TEAMS_PEERS,
    ],
    "shared/channels/acs_email.py": [
        _CHANNEL_KILLS,
        "tests/test_channel_acs.py",
        "tests/test_user_assigned_identity.py::"
        "test_the_acs_client_asks_for_the_identity_named_by_azure_client_id",
    ],
    "shared/local/alerts_cmd.py": _ALERTS_CLI,
    # Its own kill tests first: reset on fake stores, and start/stop/status on free ports
    # with every Azurite under the test's folder killed at the end (the start and status
    # tests of test_mutants_cli.py left Azurites running under some mutants, one on the
    # default ports). Then reset on stores a real Azurite wrote.
    "shared/local/azurite_cmd.py": [
        "tests/test_mutants_azurite_cmd.py",
        f"{_CLI_KILLS}::test_each_commands_help_is_its_committed_text",
        f"{_CLI_KILLS}::test_azurite_stop_kills_what_ignores_the_request_to_end",
        f"{_CLI_KILLS}::test_azurite_status_ignores_a_recorded_pid_that_is_not_an_azurite",
        "tests/test_undo_azurite_reset.py",
    ],
    "shared/local/registrations_cmd.py": _PULL_CLI,
    "shared/local/report_cmd.py": _REPORT_CLI,
    # Its behaviour tests run `ca-watch scan` as a subprocess (see above): these run it
    # in-process with its output pinned.
    # (of test_mutants_cli.py only its --help goldens: the rest is other commands)
    "shared/local/scan_cmd.py": [
        "tests/test_mutants_cli_scan.py",
        f"{_CLI_KILLS}::test_each_commands_help_is_its_committed_text",
    ],
}


def missing_tests(entries: list[str]) -> list[str]:
    """The test files and node ids (``file::test``, also after ``--deselect=``) of a
    selection that do not exist: a renamed test would otherwise drop out of it unseen."""
    missing = []
    for entry in entries:
        target = entry.removeprefix("--deselect=")
        if not target.startswith("tests/"):
            continue  # a pytest option (-k and its expression)
        path, _, test = target.partition("::")
        file = ROOT / path
        name = test.split("[")[0]  # a parametrized id names its function
        if not file.is_file() or (name and f"def {name}(" not in file.read_text()):
            missing.append(target)
    return missing


def _setup_cfg(module: str, tests: list[str]) -> str:
    if missing := missing_tests(tests):
        raise SystemExit(f"no such test in {module}'s selection: {', '.join(missing)}")
    selection = "\n    ".join(tests)
    return (
        "# Written by scripts/mutation.py for one module's run; removed afterwards.\n"
        "[mutmut]\n"
        "source_paths=shared\n"
        f"only_mutate={module}\n"
        # README.md: tests/test_states_vocabulary.py checks its table of states
        "also_copy=function_app.py\n    README.md\n    tests\n    scripts\n"
        "pytest_add_cli_args=-p no:cacheprovider -p no:xdist -q\n"
        f"pytest_add_cli_args_test_selection={selection}\n"
    )


def _needs_azurite(module: str) -> bool:
    # The channels' pass-level tests and the CLI commands run against storage too.
    return module.startswith(
        ("shared/app/", "shared/storage/", "shared/channels/", "shared/local/")
    )


@contextlib.contextmanager
def _azurite_pool(count: int) -> Iterator[dict[str, str]]:
    """`count` running Azurites lent to the mutant runs (tests/azurite_pool.py): one start
    per module run instead of one per mutant. Yields the environment that names them."""
    with tempfile.TemporaryDirectory(prefix="mutation-azurite-") as pool:
        servers = [Azurite(Path(pool) / f"server{i}").start() for i in range(count)]
        try:
            for server in servers:
                write_pool_entry(Path(pool), server)
            yield {POOL_ENV: pool}
        finally:
            for server in servers:
                server.stop()


def _mutmut(
    *args: str, show: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mutmut", *args]
    return subprocess.run(
        command,
        cwd=ROOT,
        text=True,
        capture_output=not show,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _keep_survivor_diffs(module: str, results: str) -> None:
    """Each survivor's diff to mutants-survivors/<module>.diff (mutants/ is rebuilt per module)."""
    names = [line.split(":")[0].strip() for line in results.splitlines() if ": " in line]
    out = ROOT / "mutants-survivors" / (Path(module).stem + ".diff")
    out.parent.mkdir(exist_ok=True)
    out.write_text("".join(_mutmut("show", name).stdout for name in names))


def _git(*args: str) -> str:
    run = subprocess.run(["git", *args], cwd=ROOT, text=True, capture_output=True, check=False)
    return run.stdout.rstrip() if run.returncode == 0 else ""  # porcelain lines start with " "


def _where_measured() -> str:
    commit = _git("rev-parse", "--short", "HEAD")
    moment = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    load = os.getloadavg()[1]  # the 5-minute average, over most of a module's run
    where = f"make mutation at {commit or 'an unknown commit'}, {moment} UTC"
    return f"{where}, load {load:.1f} on {os.cpu_count()} cores"


# Files every module's run depends on besides its own source and tests (the selection
# itself is compared with the one the row records).
_SHARED_INPUTS = ("tests/conftest.py", "tests/azurite_pool.py", "requirements-dev.txt")


def inputs_of(module: str) -> set[str]:
    """The files whose change can change a module's score: its source, its selected test
    files and what every run shares."""
    tests = {
        entry.removeprefix("--deselect=").split("::")[0]
        for entry in MODULE_TESTS[module]
        if entry.removeprefix("--deselect=").startswith("tests/")
    }
    return {module, *tests, *_SHARED_INPUTS}


def changed_since(commit: str) -> set[str] | None:
    """Files changed since ``commit`` (committed or not); None when git cannot tell."""
    if not commit:
        return None
    known = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True
    )
    if known.returncode != 0:  # a shallow clone, or a commit that was rewritten
        return None
    committed = _git("diff", "--name-only", commit, "HEAD").splitlines()
    # "XY path", or "XY old -> new" for a rename
    working = [line[3:].split(" -> ")[-1] for line in _git("status", "--porcelain").splitlines()]
    return {*committed, *working}


def is_stale(module: str, row: dict[str, object] | None) -> bool:
    """Whether a module's recorded row no longer stands: never measured, measured before
    commits were recorded, against another test selection, or an input of it changed since."""
    if row is None or row.get("partial") or row.get("tests") != MODULE_TESTS[module]:
        return True
    changed = changed_since(str(row.get("commit", "")))
    return changed is None or bool(changed & inputs_of(module))


def run_module(module: str, max_children: int) -> dict[str, object]:
    """Mutate one module against its tests; its stats and surviving mutants' names."""
    if SETUP_CFG.exists() and "scripts/mutation.py" not in SETUP_CFG.read_text():
        raise SystemExit("setup.cfg exists and is not ours: refusing to overwrite it")
    shutil.rmtree(MUTANTS, ignore_errors=True)
    MUTANTS.mkdir()
    # Tests that start Azurite find it under the project root, which inside mutants/ is this.
    (MUTANTS / "node_modules").symlink_to(ROOT / "node_modules")
    SETUP_CFG.write_text(_setup_cfg(module, MODULE_TESTS[module]))
    started = time.monotonic()
    try:
        lend = _azurite_pool(max_children) if _needs_azurite(module) else contextlib.nullcontext({})
        with lend as env:
            run = _mutmut("run", "--max-children", str(max_children), show=True, env=env)
        if run.returncode != 0:
            raise SystemExit(f"mutmut run failed on {module} (exit {run.returncode})")
        _mutmut("export-cicd-stats")
        stats = json.loads((MUTANTS / "mutmut-cicd-stats.json").read_text())
        results = _mutmut("results").stdout
        _keep_survivor_diffs(module, results)
    finally:
        SETUP_CFG.unlink(missing_ok=True)
    seconds = round(time.monotonic() - started)
    killed = int(stats["killed"]) + int(stats["timeout"])  # a timeout is a detected mutant
    tested = int(stats["total"]) - int(stats["skipped"])
    survivors = sorted(
        line.split(":")[0].strip()
        for line in results.splitlines()
        if line.strip().endswith(": survived") or line.strip().endswith(": no tests")
    )
    return {
        "killed": killed,
        "timeouts": int(stats["timeout"]),  # of the killed: a slow mutant, not a failed test
        "survived": tested - killed,
        "total": tested,
        "score": round(100 * killed / tested, 1) if tested else None,
        "seconds": seconds,
        # Where and how the figure was taken: run times on a shared machine mean little
        # without the load beside them.
        "measured": _where_measured(),
        "commit": _git("rev-parse", "HEAD"),  # what --changed compares with
        "tests": MODULE_TESTS[module],
        "survivors": survivors,
    }


ARGUED = ROOT / "tests" / "MUTANTS.md"
# A mutant named in MUTANTS.md: `x_func__mutmut_12` or `xǁClassǁmethod__mutmut_12`, then
# `_13` or `_14` to `_16` for more of the same function (the file's shorthand).
_NAMED = re.compile(r"`(?:([\wǁ]+?)__mutmut)?_(\d+)`(?:\s+to\s+`_(\d+)`)?")


def _function(name: str) -> str:
    return name.split("ǁ")[-1].removeprefix("x_")


def named_in_sections(text: str) -> dict[str, set[tuple[str, int]]]:
    """module path -> the (function, mutant number) pairs its section of MUTANTS.md names."""
    named: dict[str, set[tuple[str, int]]] = {}
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        found: set[tuple[str, int]] = set()
        function = None
        for match in _NAMED.finditer(section):
            if match.group(1):
                function = _function(match.group(1))
            if function is not None:
                first = int(match.group(2))
                for number in range(first, int(match.group(3) or first) + 1):
                    found.add((function, number))
        named[section.split()[0]] = found
    return named


def unargued(record: dict[str, dict[str, Any]], text: str) -> dict[str, list[str]]:
    """module -> its recorded survivors that MUTANTS.md does not name (to kill or argue)."""
    named = named_in_sections(text)
    out: dict[str, list[str]] = {}
    for module, row in sorted(record.items()):
        for survivor in row.get("survivors", []):
            function, _, number = survivor.rpartition(".")[2].rpartition("__mutmut_")
            if (_function(function), int(number)) not in named.get(module, set()):
                out.setdefault(module, []).append(survivor.rpartition(".")[2])
    return out


def print_table(record: dict[str, dict[str, object]]) -> None:
    print(f"{'module':<34} {'killed':>6} {'surv.':>6} {'total':>6} {'score':>7} {'time':>6}")
    for module, row in sorted(record.items()):
        score = "-" if row["score"] is None else f"{row['score']}%"
        print(
            f"{module:<34} {row['killed']:>6} {row['survived']:>6} {row['total']:>6} "
            f"{score:>7} {row['seconds']:>5}s"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="module names (e.g. classify) or paths")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument(
        "--changed",
        action="store_true",
        help="only the modules whose source, tests or this script changed since their row",
    )
    args = parser.parse_args()
    chosen = [
        m
        for m in MODULE_TESTS
        if not args.modules or any(a == m or a == Path(m).stem for a in args.modules)
    ]
    if not chosen:
        raise SystemExit(f"no such module; known: {', '.join(Path(m).stem for m in MODULE_TESTS)}")
    record = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    if args.changed:
        chosen = [m for m in chosen if is_stale(m, record.get(m))]
        print(f"{len(chosen)} module(s) changed since their last run: {', '.join(chosen) or '-'}")
    for module in chosen:
        print(f"mutating {module} ...", flush=True)
        record[module] = run_module(module, args.max_children)
        row = record[module]
        print(f"  {row['killed']}/{row['total']} killed ({row['score']}%) in {row['seconds']} s")
        RECORD.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    print_table(record)
    open_ = unargued(record, ARGUED.read_text() if ARGUED.exists() else "")
    for module, names in open_.items():
        print(f"{module}: {len(names)} survivor(s) to kill or argue in tests/MUTANTS.md:")
        print("  " + ", ".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
