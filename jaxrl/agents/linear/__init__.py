"""Learners for linear MDPs with known features (``jaxrl.envs.linear``): DR-RPO."""
