"""Measure before you route: replay traffic through a policy and report cost and quality.

- `traffic`: TRAFFIC readers (request objects, Message Batches lines, decision records).
- `outcomes`: OUTCOMES readers (JSON lines and CSV) giving scores per (request id, tier).
- `replay`: the pure function (policy, traffic, outcomes) -> report object, in parallel.
- `stats`: means, baselines and the bootstrap over groups (numpy, imported only here).
- `report_*`: renderers of a report (human, json, csv, html).

Nothing here is imported by `import policyroute`; numpy loads only when statistics are
computed.
"""
