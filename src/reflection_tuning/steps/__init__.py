"""The LLM steps, one module each, with its template beside it.

A step module holds everything one kind of request is: its Jinja2 template
(``<step>.j2``) and system prompt (``<step>.system.txt``), the JSON schema of a
structured reply, the parser of a free-text reply, and the rows it writes.

- :mod:`.reflect_instruction`: (Q, A) -> (Q*, A_Q*), Reflection-Tuning's instruction reflection;
- :mod:`.reflect_response`: (Q, A) -> (Q, A*), its response reflection;
- :mod:`.compress`: (Q, input, A) -> (Q', "", A), the reference's merge of an input into its instruction;
- :mod:`.judge`: the pairwise judge's two scores, and the rule that combines two orders.

Shared parts: :mod:`.prompt` (templates), :mod:`.markers` (marked segments of a reply),
:mod:`.rewrite` (the three teacher steps that rewrite a row, and the rows the reflections write).
The steps send nothing themselves: :func:`reflection_tuning.llm.runner.iter_step` runs them.
"""
