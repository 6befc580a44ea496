"""zkpot: zero-knowledge proofs of private training.

The packages, bottom up (docs/layout.md): spec (the bundle format, claims, layout arithmetic,
schedule; no ezkl, no torch), models (torch), circuits (ezkl), then prover and verifier, siblings
that never import each other; cli.py only parses and presents.
"""
