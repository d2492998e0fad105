"""Planning agents on ``mctx``: AlphaZero (the true simulator) and AssistanceZero
(learned human and goal models in an assistance game)."""
