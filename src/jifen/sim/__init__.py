"""Seeded simulation: many clients drive every service at once under a simulated clock, with faults, and an
independent model says what the database must hold (docs/reliability.md)."""
