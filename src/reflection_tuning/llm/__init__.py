"""Any OpenAI-compatible LLM endpoint: the client (window, retries, endpoints), the request
cache, the embedded llama.cpp server, cost accounting and the Batch API.

The teacher's reflection steps and the judge both send through this package.
"""
