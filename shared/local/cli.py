"""``ca-watch``: scan certificates, and drive the function app locally against Azurite.

Exit codes: 0 nothing needs action; 1 something does (an affected or mismatched
certificate, an unreadable or rejected file, a failed alert); 2 a usage or setup error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from shared.local.alerts_cmd import add_alert_commands
from shared.local.azurite_cmd import add_azurite_command
from shared.local.common import EXIT_ACTION, EXIT_USAGE, UsageError
from shared.local.registrations_cmd import add_registration_commands
from shared.local.report_cmd import add_report_command
from shared.local.runner import add_commands as add_storage_commands
from shared.local.scan_cmd import add_scan_command
from shared.local.silence_cmd import add_silence_commands


# --- the parser --------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ca-watch",
        description=(
            "CA Rotation Watch: find Azure Sphere tenant CA certificates hit by the July 2020 "
            "signature-algorithm incident or due for rotation, and alert before trust breaks."
        ),
        epilog=(
            "Exit codes: 0 nothing needs action, 1 something needs action (or failed),\n"
            "2 usage or setup error.\n"
            "Settings come from the environment (see local.settings.json.example).\n"
            "Run 'ca-watch COMMAND --help' for each command."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    add_scan_command(commands)
    add_storage_commands(commands)
    add_report_command(commands)
    add_alert_commands(commands)
    add_azurite_command(commands)
    add_registration_commands(commands)
    add_silence_commands(commands)
    return parser


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser (and, inherited, its own subcommands'): it refuses an argument
    it does not know itself, with its own usage. argparse hands such an argument up to
    the top parser, whose error shows the top-level usage (`ca-watch upload --prefx x`)."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras


class _VersionAction(argparse.Action):
    """``--version``, read from the installed metadata only when asked (it costs ms)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = version("ca-rotation-watch")
        except PackageNotFoundError:  # run from a source tree without `pip install -e .`
            text = "unknown (not installed)"
        sys.stdout.write(f"ca-watch {text}\n")
        parser.exit()


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a C tool reports when its reader goes away


def _quiet_broken_pipe() -> int:
    """The reader closed the pipe (``ca-watch scan --json | head -1``): stop quietly.
    Output goes to /dev/null from here on, so the interpreter's final flush of stdout
    cannot raise again (the recipe of the Python docs on SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(argv)
    except BrokenPipeError:
        return _quiet_broken_pipe()


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # a closed pipe shows here, inside the handler of main()
        return code
    except UsageError as exc:
        print(f"ca-watch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise
    except Exception as exc:
        return _report_unexpected(exc)


def _report_unexpected(exc: Exception) -> int:
    """Settings and rules errors explain themselves (exit 2); anything else is one line
    naming the error, never a traceback (CA_WATCH_DEBUG=1 shows it)."""
    from shared.alerts.rules import RulesError
    from shared.settings import SettingsError

    if isinstance(exc, SettingsError | RulesError):
        print(f"ca-watch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if os.environ.get("CA_WATCH_DEBUG"):
        raise exc
    text = " ".join(str(exc).split())[:300] or "(no message)"
    print(
        f"ca-watch: error: {type(exc).__name__}: {text} (CA_WATCH_DEBUG=1 shows the traceback)",
        file=sys.stderr,
    )
    return EXIT_ACTION


if __name__ == "__main__":
    sys.exit(main())
