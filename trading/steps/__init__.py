"""The iteration's decision steps: protect (1), exit policy (1b), trim (2), hedge (3), enter (4),
what a halt or the flatten command does, and the planner that runs them over one snapshot and keeps
one intent per symbol."""
