"""Tools that run apart from the server (the offline audit verifier): they import only `core.crypto`, never Django;
a package so that `python -m tools.audit_verify` works and import-linter checks what they import."""
