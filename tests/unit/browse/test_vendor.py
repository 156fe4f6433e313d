"""The vendored libraries: pinned, licensed, inlinable, and DVC's page template in sync with them."""

from __future__ import annotations

import json
from pathlib import Path

from reflection_tuning.browse import vendor

REPO = Path(__file__).resolve().parents[3]


def test_every_library_is_present_with_its_license_and_pinned_version():
    pinned = json.loads((vendor.VENDOR_DIR / "package.json").read_text())["dependencies"]
    for lib in vendor.LIBS:
        assert (vendor.VENDOR_DIR / lib.name).stat().st_size > 10_000, lib.name
        assert "permission" in (vendor.VENDOR_DIR / f"{lib.package}.LICENSE").read_text().lower(), lib.package
        assert pinned[lib.package] == lib.version


def test_inline_has_no_source_map_or_network_reference():
    text = vendor.inline(vendor.LIBS)
    assert "sourceMappingURL" not in text and "cdn.jsdelivr" not in text
    assert text.count("</script>") == 5 and text.count("</style>") == 1  # one element each, none cut short


def test_dvc_template_is_current_and_has_no_cdn_scripts():
    """``.dvc/plots.html`` is what ``python -m reflection_tuning.browse.vendor`` writes."""
    committed = (REPO / vendor.DVC_TEMPLATE).read_text(encoding="utf-8")
    assert committed == vendor.dvc_template()
    assert "{plot_divs}" in committed and "{scripts}" not in committed
    assert "html_template = plots.html" in (REPO / ".dvc" / "config").read_text()
