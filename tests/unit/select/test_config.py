"""The ``select:`` section is checked when it loads: every bad combination is a ConfigError."""

from __future__ import annotations

import pytest
from shipped import params_config

from reflection_tuning.infra.config import ConfigError
from reflection_tuning.select.config import Config


def test_the_shipped_section_loads():
    cfg = params_config(Config, "select")
    assert cfg.method in ("v2", "v1", "original", "random", "length")


@pytest.mark.parametrize("kw, match", [
    ({"top_k": 1, "ratio": 0.5}, "not both"),
    ({"top_k": -1}, "top_k must be >= 0"),
    ({"ratio": 1.5}, r"ratio must be in \[0, 1\]"),
    ({"decontaminate_ngram": 0}, "decontaminate_ngram"),
    ({"decontaminate": True, "eval_prompts_dir": None}, "needs select.eval_prompts_dir"),
    ({"method": "length", "budget": None}, "needs select.budget"),
    ({"budget": {"match": "v9"}}, "select.budget"),
    ({"budget": 3, "method": "random", "diversity": "facility_location"}, "diversity needs"),
])
def test_bad_combinations(kw, match):
    with pytest.raises(ConfigError, match=match):
        params_config(Config, "select", **{"eval_prompts_dir": None, "top_k": None, "ratio": None, **kw})
