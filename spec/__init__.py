"""The spec: the bundle format, claims and their validation, layout arithmetic, the schedule and the fold plan.

No ezkl and no torch: what a prover writes and a verifier reads, written once, readable in one sitting."""
