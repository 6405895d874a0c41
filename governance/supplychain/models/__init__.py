"""The supply-chain area's models, one module per kind of evidence."""
