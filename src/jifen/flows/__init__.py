"""What crosses features, in order (../shared/DESIGN.md "Who may import whom"): a feature's service does
one feature's work; a flow calls several of them. `replay` — stored events re-priced by the rules
(simulation and corrections)."""
