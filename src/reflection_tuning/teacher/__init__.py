"""The teacher's steps: prompts, reply parsing, the rows the reflection stages write.

The teacher's endpoint config is :class:`reflection_tuning.llm.config.EndpointConfig`.
"""
