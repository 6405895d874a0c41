"""Examples of code that runs on the other side of Provenant's API (a webhook receiver): they import only
`core.crypto`, never Django; a package so that import-linter checks what they import."""
