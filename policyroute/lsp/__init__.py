"""`policyroute lsp`: the checker, formatter and analysis served to editors over the Language
Server Protocol (stdio).

Needs the `lsp` extra (pygls and lsprotocol); only the `lsp` command imports this package, so
`import policyroute` and `policyroute check` never pay for it. The stages:

- `positions`: character offsets <-> LSP positions (UTF-16 code units unless negotiated);
- `index`: every declaration and every use of a name in a loaded policy, across its files;
- `snapshot`: one document checked exactly as `policyroute check` checks it;
- `hover`, `complete`, `fixes`, `outline`: the answers to the editor's requests;
- `server`: the pygls wiring and the diagnostics each open document publishes.
"""
