"""Judging shadow pairs into OUTCOMES that `policyroute replay` reads.

`read` parses pairs files; `prompts` builds the LLM judge's questions and reads its verdicts;
`deterministic` grades structured answers without a model; `cache` remembers every judgement
by a hash of its content so nothing is judged twice; `online` and `batch` run the judge
through the Anthropic SDK (one call at a time, or the Message Batches API at half price);
`run` ties them together and writes the outcome lines.
"""
