"""Planning agents on ``mctx``: AlphaZero (the true simulator), AssistanceZero
(learned human and goal models in an assistance game) and MuZero (a learned model)."""
