"""The data browser (``reports/K.html``) and the vendored browser libraries it and DVC's plots page inline.

:mod:`.samples` joins the rows, :mod:`.plots` builds the Vega-Lite specs with altair,
:mod:`.page` renders the page, :mod:`.vendor` owns the pinned libraries.
"""
