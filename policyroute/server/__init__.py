"""`policyroute serve`: the Messages API as a proxy that routes through a policy.

Needs the `serve` extra (starlette, uvicorn, aiohttp, prometheus-client). Nothing here is
imported by `import policyroute`; `create_app` is the entry point (see app.py).
"""
