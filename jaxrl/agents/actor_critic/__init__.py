"""Off-policy actor-critic algorithms on replay (SAC, TD3, DSAC-T, DrM, MENTOR) and the
pieces they share (``common``)."""
