"""Stage ``reflect_response``: its command and path options (the stage runs in tests/integration/stages/)."""

from __future__ import annotations

from stage_help import check_help_lists_path_options


def test_help_lists_the_path_options():
    check_help_lists_path_options("reflect_response")
