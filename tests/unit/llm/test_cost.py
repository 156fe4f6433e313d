"""Teacher cost: USD from tokens and the hard cap (pure)."""

from __future__ import annotations

import pytest

from reflection_tuning.llm.cost import Budget, CostCapReached, Price, prompt_tokens_upper_bound


def test_price_is_usd_per_million_tokens():
    price = Price.from_params({"input": 0.15, "output": 0.60})  # gpt-4o-mini list prices
    assert price.cost(1_000_000, 0) == pytest.approx(0.15)
    assert price.cost(2_000, 500) == pytest.approx(0.0003 + 0.0003)
    assert Price.from_params(None) is None


def test_upper_bound_counts_bytes_not_characters():
    messages = [{"role": "system", "content": ""}, {"role": "user", "content": "héllo"}]  # é is 2 bytes
    assert prompt_tokens_upper_bound(messages) == 6 + 2 * 16


def test_budget_reserves_the_worst_case_and_settles_to_the_reported_cost():
    budget = Budget(Price(1e6, 1e6), cap=100.0)  # USD 1 per token
    first = budget.reserve(40, 20)
    second = budget.reserve(20, 10)
    assert (first, second, budget.reserved) == (60.0, 30.0, 90.0)
    with pytest.raises(CostCapReached):
        budget.reserve(5, 10)  # 90 held + 15 > 100
    assert budget.settle(first, 30, 5) == 35.0
    assert budget.spent == 35.0 and budget.reserved == 30.0
    with pytest.raises(CostCapReached):
        budget.reserve(1, 1)  # once refused, every later request is refused: a clean stop
    assert budget.settle(second, None, None) == 0.0  # a failed request is not billed
    assert budget.refused == 2 and budget.reached


def test_budget_without_cap_counts_and_without_price_is_free():
    assert Budget(Price(1.0, 1.0), cap=None).reserve(10**9, 10**9) > 0
    assert Budget(None, cap=None).reserve(10, 10) == 0.0
    with pytest.raises(ValueError):
        Budget(None, cap=1.0)
