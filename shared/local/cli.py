"""``ca-watch``: scan certificates, and drive the function app locally against Azurite.

Exit codes: 0 nothing needs action; 1 something does (an affected or mismatched
certificate, an unreadable or rejected file, a failed alert); 2 a usage or setup error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shared.local.alerts_cmd import add_alert_commands
from shared.local.common import EXIT_USAGE, UsageError
from shared.local.runner import add_commands as add_storage_commands
from shared.local.scan_cmd import add_scan_command


# --- the parser --------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ca-watch",
        description=(
            "CA Rotation Watch: find Azure Sphere tenant CA certificates hit by the July 2020 "
            "signature-algorithm incident or due for rotation, and alert before trust breaks."
        ),
        epilog=(
            "Exit codes: 0 nothing needs action, 1 something needs action, 2 usage error.\n"
            "Settings come from the environment (see local.settings.json.example).\n"
            "Run 'ca-watch COMMAND --help' for each command."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_scan_command(commands)
    add_storage_commands(commands)
    add_alert_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.handler(args))
    except UsageError as exc:
        print(f"ca-watch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # settings and rules errors explain themselves
        from shared.alerts.rules import RulesError
        from shared.settings import SettingsError

        if isinstance(exc, SettingsError | RulesError):
            print(f"ca-watch: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    sys.exit(main())
